#!/usr/bin/env node
// mesh-init: program a pod's network namespace so its TCP flows through the proxy.
import { main } from './init.js';

process.exitCode = await main(process.argv);
