#!/usr/bin/env python3
"""Runs an ext4ts streamtest plan (tools/explorer/streamtest.ts) in a host directory.

    python3 dir_runner.py PLAN.json POOL.bin DIR [--verify | --verify-only]

PLAN.json is the Plan without its pool ({opts, dirs, objects}); POOL.bin is the pool's bytes.
The semantics are runStreamtest's, with threads where it has tasks, so the same plan runs on a
kernel or FUSE mount (Node has neither setxattr nor sync_file_range):

- the plan's directories are made first (timed as "create", as runStreamtest times its mkdirs);
- opts.workers writer threads; writer w runs, in plan order, the ops of the objects whose
  writer is w. create: open(O_CREAT|O_TRUNC|O_WRONLY, 0o644) ("create"), pwrite of the data at 0
  ("overwrite"), the fd handed to the flusher queue, then the three setxattrs by path.
  overwrite: open(O_WRONLY) (untimed), pwrite at `at`, fd handed over. setxattr, removexattr,
  truncate, rename and unlink by path. A writer stops at its first error;
- opts.flushers flusher threads take (fd, n) from one FIFO, n being the writer's running count
  of handed-over files; flusher f calls, by (n + f) % 5, sync_file_range(fd, 0, 0,
  SYNC_FILE_RANGE_WRITE) (0-2), fdatasync (3) or fsync (4), then closes the fd;
- a syncer calls syncfs once floor(s * objects / (syncs + 1)) objects are done, s = 1..syncs;
- one final syncfs once every thread is done.

The time is from before the mkdirs to after the final syncfs. Prints one JSON line: objects,
operations, elapsed_ms, objects_per_s, bytes_written, MB_per_s, latencies {kind: {n, p50, p90,
p99, max}} in ms (nearest rank), errors (the first 5), n_errors; with --verify (untimed, after
the run) or --verify-only (no run) also verify_bad_objects (objects, and stray directory
entries, not as the plan's final state says) and verify_problems (the first 20).

Exit status: 0; 1 when the run had errors or the check found problems (the JSON is printed
all the same); 2 for bad arguments or an unreadable plan.
"""
import argparse
import ctypes
import ctypes.util
import json
import math
import os
import queue
import sys
import threading
import time

SYNC_FILE_RANGE_WRITE = 2


def load_libc():
    libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6', use_errno=True)
    libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    libc.sync_file_range.restype = ctypes.c_int
    libc.syncfs.argtypes = [ctypes.c_int]
    libc.syncfs.restype = ctypes.c_int
    return libc


LIBC = load_libc()


def c_call(fn, what, *args):
    # ctypes.CDLL drops the GIL around the call, so flushers and writers overlap as in C.
    if fn(*args) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f'{what}: {os.strerror(e)}')


def sync_file_range(fd):
    c_call(LIBC.sync_file_range, 'sync_file_range', fd, 0, 0, SYNC_FILE_RANGE_WRITE)


def syncfs(fd):
    c_call(LIBC.syncfs, 'syncfs', fd)


class Stats:
    """One thread's latencies (merged at the end, so the threads share no lock)."""

    def __init__(self):
        self.lat = {}
        self.operations = 0
        self.bytes = 0

    def timed(self, kind, fn, *args):
        t0 = time.perf_counter()
        v = fn(*args)
        self.lat.setdefault(kind, []).append((time.perf_counter() - t0) * 1000)
        self.operations += 1
        return v


class Progress:
    """Objects done so far; the syncer waits on it."""

    def __init__(self):
        self.cond = threading.Condition()
        self.done = 0

    def add(self, k):
        with self.cond:
            self.done += k
            self.cond.notify_all()

    def finish(self, total):
        with self.cond:
            self.done = max(self.done, total)
            self.cond.notify_all()

    def wait_for(self, due):
        with self.cond:
            self.cond.wait_for(lambda: self.done >= due)


def percentile(xs, p):
    """Nearest rank over sorted xs, as percentile() in streamtest.ts."""
    return xs[min(len(xs) - 1, max(0, math.ceil(p / 100 * len(xs)) - 1))]


def summary(xs):
    s = sorted(xs)
    return {'n': len(s), 'p50': round(percentile(s, 50), 4), 'p90': round(percentile(s, 90), 4),
            'p99': round(percentile(s, 99), 4), 'max': round(s[-1], 4)}


class Runner:
    def __init__(self, plan, pool, root):
        self.plan = plan
        self.opts = plan['opts']
        self.pool = memoryview(pool)
        self.root = root
        self.errors = []  # list.append holds the GIL: safe from every thread
        self.progress = Progress()
        self.flushq = queue.Queue()  # unbounded FIFO, as runStreamtest's Channel

    def at(self, p):
        return os.path.join(self.root, p.lstrip('/'))

    def span(self, s):
        return self.pool[s['off']:s['off'] + s['len']]

    def pwrite_all(self, fd, data, at):
        done = 0
        while done < len(data):
            done += os.pwrite(fd, data[done:], at + done)

    def writer(self, w, st):
        n = 0  # files handed to the flushers so far
        where = ''
        try:
            for o in self.plan['objects']:
                if o['writer'] != w:
                    continue
                path = self.at(o['path'])
                for op in o['ops']:
                    k = op['kind']
                    where = f'{k} {path}'
                    if k == 'create' or k == 'overwrite':
                        if k == 'create':
                            fd = st.timed('create', os.open, path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o644)
                        else:
                            fd = os.open(path, os.O_WRONLY)
                        try:
                            data = self.span(op['data'])
                            st.timed('overwrite', self.pwrite_all, fd, data, 0 if k == 'create' else op['at'])
                            st.bytes += len(data)
                        except BaseException:
                            os.close(fd)
                            raise
                        self.flushq.put((fd, n))  # the flusher closes it
                        n += 1
                        if k == 'create':
                            for name, v in op['xattrs']:
                                st.timed('setxattr', os.setxattr, path, name, self.span(v))
                    elif k == 'setxattr':
                        st.timed('setxattr', os.setxattr, path, op['name'], self.span(op['value']))
                    elif k == 'removexattr':
                        st.timed('removexattr', os.removexattr, path, op['name'])
                    elif k == 'truncate':
                        st.timed('truncate', os.truncate, path, op['len'])
                    elif k == 'rename':
                        to = self.at(op['to'])
                        st.timed('rename', os.rename, path, to)
                        path = to
                    elif k == 'unlink':
                        st.timed('unlink', os.unlink, path)
                    else:
                        raise ValueError(f'unknown op kind {k!r}')
                self.progress.add(1)
        except Exception as e:  # noqa: BLE001 - reported, as runStreamtest's guard does
            self.errors.append(f'writer {w}: {where}: {e!r}')

    def flusher(self, f, st):
        while True:
            item = self.flushq.get()
            if item is None:
                return
            fd, n = item
            try:
                # Mostly sync_file_range(WRITE), as FileStore's flusher; some fdatasync/fsync.
                pick = (n + f) % 5
                if pick < 3:
                    st.timed('sync_file_range', sync_file_range, fd)
                elif pick == 3:
                    st.timed('fdatasync', os.fdatasync, fd)
                else:
                    st.timed('fsync', os.fsync, fd)
            except Exception as e:  # noqa: BLE001
                # Unlike runStreamtest's flusher, go on: the queued fds must still be closed.
                self.errors.append(f'flusher {f}: {e!r}')
            finally:
                os.close(fd)

    def syncer(self, rootfd, st):
        o = self.opts
        try:
            for s in range(1, o['syncs'] + 1):
                self.progress.wait_for((s * o['objects']) // (o['syncs'] + 1))
                st.timed('syncfs', syncfs, rootfd)
        except Exception as e:  # noqa: BLE001
            self.errors.append(f'syncer: {e!r}')

    def run(self):
        o = self.opts
        rootfd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        main = Stats()
        wstats = [Stats() for _ in range(o['workers'])]
        fstats = [Stats() for _ in range(o['flushers'])]
        sstats = Stats()
        try:
            t0 = time.perf_counter()
            for d in self.plan['dirs']:
                main.timed('create', os.makedirs, self.at(d), 0o777, True)
            writers = [threading.Thread(target=self.writer, args=(w, wstats[w])) for w in range(o['workers'])]
            flushers = [threading.Thread(target=self.flusher, args=(f, fstats[f])) for f in range(o['flushers'])]
            sync = threading.Thread(target=self.syncer, args=(rootfd, sstats))
            for t in [*writers, *flushers, sync]:
                t.start()
            for t in writers:
                t.join()
            self.progress.finish(o['objects'])
            for _ in flushers:
                self.flushq.put(None)
            for t in [*flushers, sync]:
                t.join()
            try:
                main.timed('syncfs', syncfs, rootfd)
            except OSError as e:
                self.errors.append(f'final syncfs: {e!r}')
            elapsed = (time.perf_counter() - t0) * 1000
        finally:
            os.close(rootfd)
        lat = {}
        operations = 0
        written = 0
        for st in [main, *wstats, *fstats, sstats]:
            operations += st.operations
            written += st.bytes
            for k, xs in st.lat.items():
                lat.setdefault(k, []).extend(xs)
        return {
            'objects': o['objects'],
            'operations': operations,
            'elapsed_ms': round(elapsed, 3),
            'objects_per_s': round(o['objects'] / (elapsed / 1000), 1),
            'bytes_written': written,
            'MB_per_s': round(written / 1e6 / (elapsed / 1000), 1),
            'latencies': {k: summary(xs) for k, xs in sorted(lat.items())},
            'errors': self.errors[:5],
            'n_errors': len(self.errors),
        }

    # -- the check ------------------------------------------------------------------------------

    def expected(self, o):
        """(path, data, xattrs) after the object's ops, or None once unlinked (expectedState)."""
        path = o['path']
        data = bytearray()
        xattrs = {}
        for op in o['ops']:
            k = op['kind']
            if k == 'create':
                data = bytearray(self.span(op['data']))
                for name, v in op['xattrs']:
                    xattrs[name] = bytes(self.span(v))
            elif k == 'overwrite':
                end = op['at'] + op['data']['len']
                if end > len(data):
                    data.extend(bytes(end - len(data)))
                data[op['at']:end] = self.span(op['data'])
            elif k == 'setxattr':
                xattrs[op['name']] = bytes(self.span(op['value']))
            elif k == 'removexattr':
                xattrs.pop(op['name'], None)
            elif k == 'truncate':
                n = op['len']
                data = data[:n] + bytes(max(0, n - len(data)))  # growing reads as zeros
            elif k == 'rename':
                path = op['to']
            elif k == 'unlink':
                return None
        return path, data, xattrs

    def verify(self):
        problems = []
        bad = 0
        names = {d: set() for d in self.plan['dirs']}
        for o in self.plan['objects']:
            want = self.expected(o)
            if want is None:
                continue
            path, data, xattrs = want
            d, _, base = path.rpartition('/')
            names.setdefault(d, set()).add(base)
            p = self.at(path)
            why = []
            try:
                with open(p, 'rb') as f:
                    got = f.read()
                if len(got) != len(data):
                    why.append(f'size {len(got)}, expected {len(data)}')
                elif got != data:
                    at = next(i for i in range(len(got)) if got[i] != data[i])
                    why.append(f'byte {at} is {got[at]}, expected {data[at]}')
                # Only user.* names: the host may add its own (security.selinux).
                have = {n for n in os.listxattr(p) if n.startswith('user.')}
                for n, v in xattrs.items():
                    if n not in have:
                        why.append(f'xattr {n} missing')
                    else:
                        g = os.getxattr(p, n)
                        if g != v:
                            why.append(f'xattr {n} differs ({len(g)} bytes, expected {len(v)})')
                for n in sorted(have - set(xattrs)):
                    why.append(f'unexpected xattr {n}')
            except OSError as e:
                why.append(f'cannot read: {e}')
            if why:
                bad += 1
                problems.extend(f'{path}: {w}' for w in why)
        for d, want in names.items():
            try:
                have = set(os.listdir(self.at(d)))
            except OSError as e:
                bad += 1
                problems.append(f'{d}: {e}')
                continue
            for n in sorted(have - want):
                bad += 1
                problems.append(f'{d}/{n}: should not exist')
        return {'verify_bad_objects': bad, 'verify_problems': problems[:20]}


def main():
    ap = argparse.ArgumentParser(description='Run an ext4ts streamtest plan in a directory.')
    ap.add_argument('plan', help='the plan as JSON, without its pool')
    ap.add_argument('pool', help="the plan's pool, raw bytes")
    ap.add_argument('dir', help='where to run it (a mount point)')
    ap.add_argument('--verify', action='store_true', help='afterwards, check the final state against the plan')
    ap.add_argument('--verify-only', action='store_true', help='only check a previous run')
    a = ap.parse_args()
    try:
        with open(a.plan, encoding='utf-8') as f:
            plan = json.load(f)
        with open(a.pool, 'rb') as f:
            pool = f.read()
        o = plan['opts']
        for k in ('workers', 'flushers', 'objects', 'syncs'):
            if not isinstance(o[k], int) or o[k] < 0:
                raise ValueError(f'opts.{k} is not a count: {o[k]!r}')
        if not os.path.isdir(a.dir):
            raise ValueError(f'{a.dir} is not a directory')
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f'dir_runner: {e}', file=sys.stderr)
        return 2
    r = Runner(plan, pool, a.dir)
    if a.verify_only:
        res = {'objects': o['objects'], 'errors': [], 'n_errors': 0}
    else:
        res = r.run()
    if a.verify or a.verify_only:
        res.update(r.verify())
    print(json.dumps(res))
    return 1 if res['n_errors'] > 0 or res.get('verify_bad_objects', 0) > 0 else 0


if __name__ == '__main__':
    sys.exit(main())
