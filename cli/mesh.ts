#!/usr/bin/env node
// mesh: the command-line interface. One file per subcommand; this one only composes.
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { checkCommand } from './check.js';
import { dashboardCommand } from './dashboard.js';
import { demoCommand } from './demo/index.js';
import { endpointsCommand } from './endpoints.js';
import { identityCommand } from './identity.js';
import { injectCommand } from './inject.js';
import { installCommand, uninstallCommand } from './install.js';
import { statCommand } from './stat-command.js';
import { tapCommand } from './tap.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command('mesh')
  .description('A zero-config service mesh: every TCP connection of a workload observable, reliable and mutually authenticated')
  .version(pkg.version)
  .exitOverride()
  .addCommand(checkCommand())
  .addCommand(dashboardCommand())
  .addCommand(demoCommand())
  .addCommand(endpointsCommand())
  .addCommand(identityCommand())
  .addCommand(injectCommand())
  .addCommand(installCommand())
  .addCommand(statCommand())
  .addCommand(tapCommand())
  .addCommand(uninstallCommand());

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help' ? 0 : 2;
  } else {
    process.stderr.write(`mesh: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}
