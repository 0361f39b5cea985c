import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { NET, dirs, files } from '../config.ts';
import { run, succeeds } from '../../../lib/exec.ts';
import { inNsOk } from '../net.ts';
import type { Component } from './types.ts';

const env = { OVS_RUNDIR: dirs.ovn, OVS_LOGDIR: dirs.ovn, OVS_DBDIR: dirs.ovn, OVN_RUNDIR: dirs.ovn, OVN_LOGDIR: dirs.ovn, OVN_DBDIR: dirs.ovn };
const nbDb = join(dirs.ovn, 'nb.db');
const sbDb = join(dirs.ovn, 'sb.db');
export const nbCtl = join(dirs.ovn, 'nb.ctl');
export const sbCtl = join(dirs.ovn, 'sb.ctl');
export const northdCtl = join(dirs.ovn, 'northd.ctl');
export const NB_TCP = `tcp:${NET.cpIp}:6641`;
export const SB_TCP = `tcp:${NET.cpIp}:6642`;

/**
 * OVN central in the control-plane namespace: the Northbound DB as a one-member RAFT cluster (so
 * monitor_cond_since resumes without a full resync), the Southbound DB, ovn-northd. Local clients use
 * the unix sockets (they work from the root namespace); nodes use TCP on the underlay.
 */
export function ovnCentral(): Component[] {
  const ns = NET.cpNs;
  const server = (name: string, db: string, sock: string, ctl: string, port: number) => ({
    name, netns: ns, cmd: 'ovsdb-server', env,
    args: [db, `--remote=punix:${sock}`, `--remote=ptcp:${port}:${NET.cpIp}`, `--unixctl=${ctl}`, `--pidfile=${join(dirs.ovn, `${name}.pid`)}`,
      '--no-chdir', '-vconsole:info', '-vsyslog:off', '-vfile:off'],
  });
  return [
    {
      name: 'ovn-nb',
      netns: ns,
      prepare: async () => {
        mkdirSync(dirs.ovn, { recursive: true });
        if (!existsSync(nbDb)) {
          await run('ovsdb-tool', ['create-cluster', nbDb, '/usr/share/ovn/ovn-nb.ovsschema', 'tcp:127.0.0.1:6643']);
        }
      },
      daemon: server('ovn-nb', nbDb, files.nbSock, nbCtl, 6641),
      health: async () => {
        const r = await succeeds('ovs-appctl', ['-t', nbCtl, 'cluster/status', 'OVN_Northbound']);
        if (!r) return false;
        const status = await run('ovs-appctl', ['-t', nbCtl, 'cluster/status', 'OVN_Northbound']);
        return /Role: leader/.test(status) && (await inNsOk(ns, 'ovsdb-client', ['--timeout=3', 'list-dbs', NB_TCP]));
      },
      after: async () => void (await run('ovn-nbctl', [`--db=unix:${files.nbSock}`, 'init'])),
    },
    {
      name: 'ovn-sb',
      netns: ns,
      prepare: async () => {
        mkdirSync(dirs.ovn, { recursive: true });
        if (!existsSync(sbDb)) await run('ovsdb-tool', ['create', sbDb, '/usr/share/ovn/ovn-sb.ovsschema']);
      },
      daemon: server('ovn-sb', sbDb, files.sbSock, sbCtl, 6642),
      // Over TCP on the underlay, as the nodes' ovn-controllers connect.
      health: () => inNsOk(ns, 'ovsdb-client', ['--timeout=3', 'list-dbs', SB_TCP]),
      after: async () => void (await run('ovn-sbctl', [`--db=unix:${files.sbSock}`, 'init'])),
    },
    {
      name: 'ovn-northd',
      netns: ns,
      daemon: {
        name: 'ovn-northd', netns: ns, cmd: 'ovn-northd', env,
        args: [`--ovnnb-db=unix:${files.nbSock}`, `--ovnsb-db=unix:${files.sbSock}`, `--unixctl=${northdCtl}`,
          `--pidfile=${join(dirs.ovn, 'ovn-northd.pid')}`, '--no-chdir', '-vconsole:info', '-vsyslog:off', '-vfile:off'],
      },
      health: async () => /Status: active/.test(await run('ovs-appctl', ['-t', northdCtl, 'status']).catch(() => '')),
    },
  ];
}
