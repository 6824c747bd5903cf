#!/bin/sh
# Rebuilds test/images/f_engine_small/image.gz (needs e2fsprogs 1.47 and attr). Run from the repo root.
# A 4 MiB ext4 image, 1 KiB blocks, metadata_csum, no journal, holding one of each structure the
# read engine walks: a depth-1 extent tree (/sparse), an htree directory (/htree, indexed by
# e2fsck -D), an external xattr block (/xattr), fast, slow and looping symlinks, a fifo.
# Used by src/fs/engine.test.ts for the corruption tests and the fast-check mutation property.
set -eu
out="$(pwd)/test/images/f_engine_small"
t=$(mktemp -d)
mkdir -p "$t/tree/dir/sub" "$t/tree/htree" "$t/tree/links" "$t/tree/empty-dir"
cd "$t/tree"
printf 'hello, world\n' > hello.txt
printf 'file a\n' > dir/a.txt
printf 'deep file\n' > dir/sub/deep.txt
head -c 3000 /dev/zero | tr '\0' 'b' > dir/b.bin
head -c 40960 /dev/zero | tr '\0' 'B' > big
# 12 data blocks with a hole after each: 12 extents, more than the 4 the inode holds.
i=0; while [ $i -lt 12 ]; do printf "block %02d\n" $i | dd of=sparse bs=1024 seek=$((i * 2)) conv=notrunc status=none; i=$((i + 1)); done
i=0; while [ $i -lt 120 ]; do : > "htree/entry-$(printf %04d $i)-with-a-longish-name-to-fill-blocks"; i=$((i + 1)); done
printf 'xattrs\n' > xattr
setfattr -n user.small -v hello xattr
setfattr -n user.big -v "$(head -c 600 /dev/zero | tr '\0' 'x')" xattr
ln -s ../hello.txt links/fast
ln -s "../dir/./././././././././././././././././././././././././././sub/deep.txt" links/slow
ln -s loop-b links/loop-a
ln -s loop-a links/loop-b
mkfifo fifo
find . -exec touch -h -d '2024-01-02 03:04:05' {} +
cd - >/dev/null
E2FSPROGS_FAKE_TIME=1704164645 mke2fs -q -F -t ext4 -b 1024 -I 256 -N 256 -O ^has_journal -L f_engine_small \
  -U 3f1c9d2e-7b4a-4e11-9c0d-2a6b8e5f1d34 -E hash_seed=8c7b6a59-4d3e-4f21-8a9b-0c1d2e3f4a5b \
  -d "$t/tree" "$t/image" 4M >/dev/null
E2FSPROGS_FAKE_TIME=1704164645 e2fsck -fyD "$t/image" >/dev/null 2>&1 || [ $? -eq 1 ]
e2fsck -fn "$t/image" >/dev/null 2>&1
gzip -9n < "$t/image" > "$out/image.gz"
rm -rf "$t"
