import { s3ConfigFromEnv, type S3Config } from '@tensorfleet/infra';
import { fail } from './output';

/**
 * The cluster's object store, from S3_ENDPOINT / S3_ACCESS_KEY / S3_SECRET_KEY. Commands whose
 * result must outlive them (ingest writes a dataset, export reads a job's checkpoints) never
 * start a private Swift as `fleet demo` and the benchmarks do: an ingest into one would be lost
 * when the command exits, an export from one finds nothing.
 */
export function clusterS3(command: string): S3Config {
  const s3 = s3ConfigFromEnv(process.env);
  if (!s3) {
    fail(`${command} needs your cluster's object store: set S3_ENDPOINT, S3_ACCESS_KEY and S3_SECRET_KEY (e.g. S3_ENDPOINT=http://127.0.0.1:9000). ` +
      'It does not start a private one, since what it writes there would be gone when it exits.');
  }
  return s3;
}
