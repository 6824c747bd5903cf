/**
 * Node-only entry ("ext4ts/node"): image files as block devices.
 */

import { Volume, type MountOptions } from "./api/promises.js";
import { FileDevice } from "./device/file.js";

export * from "./index.js";
export { FileDevice, type FileDeviceOptions } from "./device/file.js";

/** Open an image file (or block device) and mount it; read-only unless asked otherwise. */
export async function openImage(path: string, opts: MountOptions & { syncIO?: boolean } = {}): Promise<Volume> {
  const dev = await FileDevice.open(path, { readOnly: opts.readOnly ?? true, syncIO: opts.syncIO ?? false });
  try {
    return await Volume.mount(dev, opts);
  } catch (e) {
    await dev.close();
    throw e;
  }
}
