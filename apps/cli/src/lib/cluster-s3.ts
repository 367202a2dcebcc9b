import { s3ConfigFromEnv, type S3Config } from '@tensorfleet/infra';
import { currentClusterSettings } from '../background/cluster-dir';
import { fail } from './output';

/**
 * The cluster's object store, from S3_ENDPOINT / S3_ACCESS_KEY / S3_SECRET_KEY, else the one
 * `fleet up` started. Commands whose result must outlive them (ingest writes a dataset, export
 * reads a job's checkpoints) never start a private Swift as `fleet demo` and the benchmarks do:
 * an ingest into one would be lost when the command exits, an export from one finds nothing.
 */
export function clusterS3(command: string): S3Config {
  // the environment wins over the cluster `fleet up` started
  const s3 = s3ConfigFromEnv(process.env) ?? currentClusterSettings()?.s3;
  if (!s3) {
    fail(`${command} needs your cluster's object store: start a local cluster with \`fleet up\`, or set S3_ENDPOINT, S3_ACCESS_KEY and S3_SECRET_KEY (e.g. S3_ENDPOINT=http://127.0.0.1:9000). ` +
      'It does not start a private one, since what it writes there would be gone when it exits.');
  }
  return s3;
}
