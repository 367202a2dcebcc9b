/** Where and how to reach an S3 endpoint, in the shape minio's Client takes. */
export interface S3Config {
  endPoint: string;
  port: number;
  useSSL: boolean;
  accessKey: string;
  secretKey: string;
  region: string;
  /**
   * PEM CA bundle an https endpoint's certificate must chain to (env S3_CA_FILE): it replaces
   * the system CAs for S3 connections, as `curl --cacert` and AWS_CA_BUNDLE do. A path, so that
   * it passes to other processes and threads as JSON; each reads the file itself. Unset: the
   * system CAs plus NODE_EXTRA_CA_CERTS.
   */
  caFile?: string;
}

export interface RunningService {
  url: string;
  /** Stops what was started; idempotent. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** TCP port on 127.0.0.1. Default: a free one picked by the OS. */
  port?: number;
  /** Folder for config, data, logs and PIDs. Default: a new temp folder under os.tmpdir(), removed on stop. */
  dir?: string;
  /** Goes into the temp folder's name, to tell instances apart. Default: none. */
  label?: string;
  /** Called with progress lines (installing packages, started, stopped). Default: silent. */
  onProgress?: (message: string) => void;
}

export interface RedisStartOptions extends StartOptions {
  /**
   * Append-only file persistence with this fsync policy: 'always' loses no acknowledged
   * write even to a kill -9 (what the fault tests use), 'everysec' up to a second of them.
   * Default: no persistence.
   */
  appendfsync?: 'always' | 'everysec';
  /**
   * TLS only: the port speaks TLS with this certificate and the plain port is off (`--port 0
   * --tls-port`); the URL is rediss://. `authClients` is redis.conf's tls-auth-clients
   * (default 'no': no client certificate asked for). Default: plain.
   */
  tls?: ServerTls & { authClients?: 'no' | 'yes' | 'optional' };
  /**
   * ACL lines (redis.conf's `user` syntax), e.g. `user default off` and
   * `user fleet on >PASSWORD ~tf* &* +@all`, loaded from a 0600 file in the folder.
   * Default: none (the default user without a password).
   */
  acl?: string[];
}

/** A server's PEM certificate and key, and the CA that signed it (which clients must trust). */
export interface ServerTls {
  certFile: string;
  keyFile: string;
  caFile: string;
}

/** What tlsCertificates() wrote: a CA and certificates it signed, for 127.0.0.1 and localhost. */
export interface TestCertificates {
  dir: string;
  caFile: string;
  /** NAME -> its certificate and key (server and client use both). */
  certs: Record<string, { certFile: string; keyFile: string }>;
}

export interface RunningRedis extends RunningService {
  port: number;
  dir: string;
  persistence: 'none' | 'aof-always' | 'aof-everysec';
  /**
   * Stops the server (SIGTERM; `crash`: SIGKILL, no shutdown flush), waits `downMs`, and
   * starts it again on the same port and folder. Without persistence the data is gone.
   */
  restart(opts?: { crash?: boolean; downMs?: number }): Promise<void>;
}

export interface SwiftStartOptions extends StartOptions {
  /** The S3 endpoint (the proxy) serves https with this certificate; config.useSSL and config.caFile follow. Default: http. */
  tls?: ServerTls;
}

export interface RunningSwift extends RunningService {
  config: S3Config;
  dir: string;
  /** Stops only the proxy: S3 requests are refused until startProxy(). */
  stopProxy(): Promise<void>;
  /** Starts the proxy again on the same port; resolves once an S3 request succeeds. */
  startProxy(): Promise<void>;
  /** Stops only the object server: the proxy stays up and answers object requests with 503. */
  stopObjectServer(): Promise<void>;
  startObjectServer(): Promise<void>;
}

/** What the rest of TensorFleet needs: a Redis URL and an S3 config. */
export interface Services {
  redisUrl: string;
  s3: S3Config;
  /** Stops only what was started for this object (nothing when both came from the environment). */
  stop(): Promise<void>;
}

/** The credentials the private Swift's tempauth knows (see scripts/swift.sh). */
export const SWIFT_ACCESS_KEY = 'test:tester';
export const SWIFT_SECRET_KEY = 'testing';
export const SWIFT_REGION = 'us-east-1';
