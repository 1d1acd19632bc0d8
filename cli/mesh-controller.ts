#!/usr/bin/env node
// mesh-controller: the control plane's processes (identity, injector, destination, tap).
// One file per subcommand.
import { Command, CommanderError } from 'commander';
import { controllerDestinationCommand } from './controller-destination.js';
import { controllerIdentityCommand } from './controller-identity.js';
import { controllerInjectorCommand } from './controller-injector.js';
import { controllerTapCommand } from './controller-tap.js';

const program = new Command('mesh-controller')
  .description('mesh control-plane processes')
  .exitOverride()
  .addCommand(controllerIdentityCommand())
  .addCommand(controllerDestinationCommand())
  .addCommand(controllerInjectorCommand())
  .addCommand(controllerTapCommand());

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (!(err instanceof CommanderError)) throw err;
  process.exitCode = ['commander.helpDisplayed', 'commander.help', 'commander.version'].includes(err.code) ? 0 : 2;
}
