// `mesh-init` as a command: flags → typed options → plan → apply. The bin entry (mesh-init.ts) only calls main.
import { Command, CommanderError, Option } from 'commander';
import {
  defaults,
  describePlan,
  formatPorts,
  InitError,
  parseChoice,
  parseCidrList,
  parseMark,
  parsePort,
  parsePortList,
  parseTable,
  parseUid,
  runInit,
  type InitOptions,
} from '../init/index.js';

interface Flags {
  mode: string;
  inboundPort: string;
  outboundPort: string;
  proxyUid: string;
  proxyGid?: string;
  proxyPorts: string;
  inboundPorts: string;
  skipInboundPorts: string;
  skipOutboundPorts: string;
  skipSubnets: string;
  ipv4: boolean;
  ipv6: boolean;
  iptablesMode: string;
  tproxyMark: string;
  routeTable: string;
  cleanup: boolean;
  dryRun: boolean;
}

export function optionsFromFlags(f: Flags): InitOptions {
  return {
    mode: parseChoice(f.mode, ['redirect', 'tproxy'] as const, '--mode'),
    inboundPort: parsePort(f.inboundPort, '--inbound-port'),
    outboundPort: parsePort(f.outboundPort, '--outbound-port'),
    proxyUid: parseUid(f.proxyUid, '--proxy-uid'),
    ...(f.proxyGid === undefined ? {} : { proxyGid: parseUid(f.proxyGid, '--proxy-gid') }),
    proxyPorts: parsePortList(f.proxyPorts, '--proxy-ports'),
    inboundPorts: parsePortList(f.inboundPorts, '--inbound-ports'),
    skipInboundPorts: parsePortList(f.skipInboundPorts, '--skip-inbound-ports'),
    skipOutboundPorts: parsePortList(f.skipOutboundPorts, '--skip-outbound-ports'),
    skipSubnets: parseCidrList(f.skipSubnets, '--skip-subnets'),
    ipv4: f.ipv4,
    ipv6: f.ipv6,
    iptablesMode: parseChoice(f.iptablesMode, ['auto', 'nft', 'legacy'] as const, '--iptables-mode'),
    tproxyMark: parseMark(f.tproxyMark, '--tproxy-mark'),
    routeTable: parseTable(f.routeTable, '--route-table'),
  };
}

export function initCommand(): Command {
  return new Command('mesh-init')
    .description("Program this network namespace's iptables so every TCP connection goes through the mesh proxy.")
    .addOption(new Option('--mode <mode>', 'redirect (nat REDIRECT) or tproxy (mangle TPROXY inbound, keeps client addresses)').default(defaults.mode))
    .option('--inbound-port <port>', "proxy's inbound port", String(defaults.inboundPort))
    .option('--outbound-port <port>', "proxy's outbound port", String(defaults.outboundPort))
    .option('--proxy-uid <uid>', 'user id the proxy runs as; its traffic is never intercepted', String(defaults.proxyUid))
    .option('--proxy-gid <gid>', 'group id whose traffic is never intercepted')
    .option('--proxy-ports <ports>', "proxy's own ports (admin, tap) that inbound traffic reaches directly", formatPorts(defaults.proxyPorts))
    .option('--inbound-ports <ports>', 'intercept only these inbound ports (default: all)', '')
    .option('--skip-inbound-ports <ports>', 'inbound ports that reach the app directly, e.g. 22,8000-8100', '')
    .option('--skip-outbound-ports <ports>', 'outbound ports that bypass the proxy, e.g. 25,443', '')
    .option('--skip-subnets <cidrs>', 'peer subnets that bypass the proxy both ways, e.g. 10.0.0.0/8,fd00::/8', '')
    .option('--no-ipv4', 'leave IPv4 alone')
    .option('--no-ipv6', 'leave IPv6 alone (default: configure it when the namespace has IPv6)')
    .option('--iptables-mode <mode>', 'auto, nft or legacy; auto follows whichever already holds rules', defaults.iptablesMode)
    .option('--tproxy-mark <mark>', 'tproxy mode: packet mark for policy routing', String(defaults.tproxyMark))
    .option('--route-table <id>', 'tproxy mode: routing table for marked packets', String(defaults.routeTable))
    .option('--cleanup', 'remove every rule, chain, ip rule and route mesh-init added', false)
    .option('--dry-run', 'print what would be applied, change nothing', false);
}

export async function main(argv: string[]): Promise<number> {
  const program = initCommand()
    .exitOverride()
    .configureOutput({ writeErr: () => {} });
  try {
    program.parse(argv);
    const flags = program.opts<Flags>();
    const options = optionsFromFlags(flags);
    const plan = await runInit(options, flags.cleanup ? 'cleanup' : 'apply', flags.dryRun);
    if (flags.dryRun) process.stdout.write(describePlan(plan));
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
      process.stderr.write(`mesh-init: ${err.message.replace(/^error: /, '')} (see mesh-init --help)\n`);
      return 2;
    }
    if (err instanceof InitError) {
      process.stderr.write(`mesh-init: ${err.message} [${err.code}]\n`);
      return err.exitCode;
    }
    process.stderr.write(`mesh-init: unexpected failure: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}

