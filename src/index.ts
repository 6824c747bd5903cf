/**
 * ext4ts: a userspace ext4 engine. The browser-safe entry: devices over memory, Blob and
 * ArrayBuffer, the mounted-volume API, and the errors it throws. Node's file device is in
 * "ext4ts/node".
 */

export { Volume, FileHandle, Stats, fileTypeOf, XATTR_CREATE, XATTR_REPLACE, type Dirent, type FileType, type MountOptions, type OpenFlags, type StatFs, type VolumeOptions, type WalkEntry, type XattrOptions } from "./api/promises.js";
export { FsError, isFsError, errnoNumber, type Errno, type FsErrorDetail } from "./errors.js";
export type { BlockDevice } from "./device/block_device.js";
export { MemoryDevice } from "./device/memory.js";
export { ArrayBufferDevice, BlobDevice } from "./device/blob.js";
