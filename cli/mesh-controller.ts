#!/usr/bin/env node
// mesh-controller: the control plane's processes (identity, destination, tap).
// None is built yet; each subcommand says so plainly rather than pretending.
import { Command, CommanderError } from 'commander';

const planned = [
  ['identity', 'issue workload certificates from the built-in CA (ca/)'],
  ['destination', 'service discovery for the proxies (Kubernetes or a file source)'],
  ['tap', 'aggregate live requests from the proxies'],
] as const;

const program = new Command('mesh-controller').description('mesh control-plane processes').exitOverride();
for (const [name, what] of planned) {
  program
    .command(name)
    .description(`${what} (not yet available)`)
    .action(() => {
      process.stderr.write(`mesh-controller: ${name} is not available in this version\n`);
      process.exitCode = 1;
    });
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (!(err instanceof CommanderError)) throw err;
  process.exitCode = ['commander.helpDisplayed', 'commander.help', 'commander.version'].includes(err.code) ? 0 : 2;
}
