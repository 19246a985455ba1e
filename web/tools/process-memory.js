// Peak resident memory of a browser's processes, read by the OS (Linux /proc): the measure
// both browsers share (Firefox offers no heap probe over WebDriver BiDi). A browser's
// processes are the descendants of the process the launcher started.
//   const probe = startRssProbe(rootPid); ...load...; const g = probe.growth();
// startRssProbe reads each process's resident size and resets its peak (writing 5 to
// /proc/PID/clear_refs resets VmHWM to the current RSS); growth() reads each one's VmHWM.
// The page's host is the content process (Chromium's renderers, Firefox's tab processes)
// whose peak grew most: a page and its dedicated Workers share one process in both browsers
// (Firefox's Fission puts 127.0.0.1 in its own webIsolated process). Its growth is
// VmHWM - RSS before; the other processes are listed with theirs. Processes started after
// the probe (Firefox's preallocated spare) are listed, never the host: the caller opens the
// page's origin before the probe so that its process exists. Resident growth also holds
// compiled code, code pages of the browser read in for the first time, and allocator slack:
// an upper bound of what the page itself holds.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

const KIB = 1024;

/** Why resident memory cannot be read here (a string for node:test's `skip`), or false. */
export function rssProbeSkip() {
  try {
    readFileSync('/proc/self/status', 'utf8');
    return false;
  } catch {
    return 'no Linux /proc';
  }
}

const readOr = (path, fallback) => { try { return readFileSync(path, 'utf8'); } catch { return fallback; } };

/** The pid, its descendants, each with {pid, ppid, cmd}. */
export function processTree(rootPid) {
  const all = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readOr(`/proc/${name}/stat`, null);
    if (!stat) continue; // ended meanwhile
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    let cmd = readOr(`/proc/${name}/cmdline`, '').split('\0').filter(Boolean);
    if (cmd.length === 1) cmd = cmd[0].split(' '); // Chromium rewrites its argv as one string
    all.push({ pid: Number(name), ppid, cmd });
  }
  const tree = [], parents = new Set([rootPid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const p of all) {
      if (!parents.has(p.pid) && parents.has(p.ppid)) { parents.add(p.pid); grew = true; }
    }
  }
  for (const p of all) if (parents.has(p.pid)) tree.push(p);
  return tree;
}

/** A process's kind: 'content' where pages and their Workers run, else its role. */
export function processKind(cmd) {
  const type = cmd.find((a) => a.startsWith('--type='));
  if (type) return type === '--type=renderer' && !cmd.includes('--extension-process') ? 'content' : type.slice(7);
  if (cmd.includes('-contentproc')) return cmd.at(-1) === 'tab' ? 'content' : cmd.at(-1); // Firefox: its role is last
  return 'browser';
}

/** {rss, hwm, file (resident file-backed pages: code and data of the browser's binaries)} in
 * bytes from /proc/PID/status, or null once the process has ended. */
export function residentBytes(pid) {
  const s = readOr(`/proc/${pid}/status`, null);
  if (!s) return null;
  const kib = (key) => Number((new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(s) || [])[1] ?? NaN);
  return { rss: kib('VmRSS') * KIB, hwm: kib('VmHWM') * KIB, file: kib('RssFile') * KIB };
}

/**
 * Starts measuring the peak resident growth of rootPid's processes from now on (their peaks
 * reset). growth() -> {bytes: the host's growth (null if no content process was there
 * before), anonBytes: that less the file-backed pages it read in meanwhile (the browser's
 * own code, shared with its other processes; such pages stay resident, so the growth of
 * RssFile by now is the part of the peak they took), host (its pid), processes: [{pid,
 * kind, before (null: started since), peak, growth, fileGrowth}]}.
 */
export function startRssProbe(rootPid) {
  const before = new Map();
  for (const p of processTree(rootPid)) {
    try { writeFileSync(`/proc/${p.pid}/clear_refs`, '5'); } catch { continue; } // ended, or not ours: unmeasured
    const m = residentBytes(p.pid);
    if (m) before.set(p.pid, m);
  }
  return {
    growth() {
      const processes = [];
      for (const p of processTree(rootPid)) {
        const m = residentBytes(p.pid);
        if (!m) continue;
        const b = before.get(p.pid);
        processes.push({ pid: p.pid, kind: processKind(p.cmd), before: b?.rss ?? null, peak: m.hwm,
          growth: m.hwm - (b?.rss ?? 0), fileGrowth: m.file - (b?.file ?? 0) });
      }
      const host = processes.filter((p) => p.kind === 'content' && p.before != null)
        .reduce((a, p) => (!a || p.growth > a.growth ? p : a), null);
      return { bytes: host?.growth ?? null, anonBytes: host ? host.growth - Math.max(0, host.fileGrowth) : null,
        host: host?.pid ?? null, processes };
    },
  };
}
