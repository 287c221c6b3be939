#!/usr/bin/env node
// fleetd runs from its TypeScript sources through tsx, so `npx fleetd` works right after `npm install`.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
