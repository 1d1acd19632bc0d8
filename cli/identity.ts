// `mesh identity`: the mesh CA and service-account tokens. One file per subcommand.
import { Command } from 'commander';
import { identityInitCommand } from './identity-init.js';
import { identityTokenCommand } from './identity-token.js';

export function identityCommand(): Command {
  return new Command('identity')
    .description('Workload identity: create or install the mesh CA, sign service-account tokens')
    .exitOverride()
    .addCommand(identityInitCommand())
    .addCommand(identityTokenCommand());
}
