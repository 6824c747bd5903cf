#!/bin/sh
# Rebuilds tools/cli/demo_image.ts (needs e2fsprogs and attr). Run from the repo root.
set -eu
t=$(mktemp -d)
mkdir -p "$t/tree/etc" "$t/tree/docs" "$t/tree/big"
cd "$t/tree"
printf 'Hello from ext4ts.\nThis file was read from an ext4 image held in memory, with no kernel.\n' > README.txt
printf 'root:x:0:0:root:/root:/bin/sh\n' > etc/passwd
ln -s ../README.txt docs/link-to-readme
ln -s "$(printf 'a%.0s' $(seq 1 80))" docs/slow-symlink
for i in $(seq 1 300); do echo "entry $i" > "big/file-$i"; done
setfattr -n user.comment -v "stored in the inode" README.txt
setfattr -n user.big -v "$(head -c 700 /dev/zero | tr '\0' 'x')" etc/passwd
touch -d '2026-11-23 12:00:00.123456789' README.txt
cd - >/dev/null
mke2fs -q -F -t ext4 -b 1024 -N 512 -L ext4ts-demo -U 6e0c5b6f-2a1d-4c1e-9e7a-5d3b8e2f4a10 \
  -E hash_seed=1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9 -d "$t/tree" "$t/demo.img" 2M
e2fsck -fn "$t/demo.img" >/dev/null
gzip -9 "$t/demo.img"
{
  sed -n '1,/^export const DEMO_IMAGE_GZ_BASE64 =$/p' tools/cli/demo_image.ts
  base64 -w 100 "$t/demo.img.gz" | sed 's/.*/  "&" +/' | sed '$ s/ +$/;/'
} > "$t/demo_image.ts"
mv "$t/demo_image.ts" tools/cli/demo_image.ts
rm -rf "$t"
