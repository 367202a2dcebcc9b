// What other packages take from the dashboard: where its built static files are.
import { join } from 'node:path';

/** dist/public of this package: index.html and assets/, written by build.mjs. */
export const DASHBOARD_DIR = join(__dirname, '..', 'public');
