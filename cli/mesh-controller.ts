#!/usr/bin/env node
// mesh-controller: the control plane's processes (identity, injector, destination, tap).
// One file per subcommand; those not built yet say so plainly rather than pretending.
import { Command, CommanderError } from 'commander';
import { controllerDestinationCommand } from './controller-destination.js';
import { controllerIdentityCommand } from './controller-identity.js';
import { controllerInjectorCommand } from './controller-injector.js';

const planned = [
  ['tap', 'aggregate live requests from the proxies'],
] as const;

const program = new Command('mesh-controller')
  .description('mesh control-plane processes')
  .exitOverride()
  .addCommand(controllerIdentityCommand())
  .addCommand(controllerDestinationCommand())
  .addCommand(controllerInjectorCommand());
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
