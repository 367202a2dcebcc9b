import 'reflect-metadata';
import type { INestApplication, LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { jobSpecSchema, pauseJobSchema, resumeJobSchema } from '@tensorfleet/control';
import { AppModule } from './app.module';
import { resolveCoordinatorConfig, type CoordinatorConfig, type CoordinatorOptions } from './config/coordinator-config';

export interface RunningCoordinator {
  app: INestApplication;
  config: CoordinatorConfig;
  /** http://host:port of the listening server (127.0.0.1 when bound to all interfaces). */
  url: string;
  port: number;
  /** Stops HTTP and the scheduler; running jobs stay in Redis for the next coordinator. */
  close(): Promise<void>;
}

/** Builds, documents and starts the coordinator; the CLI embeds it through this too. */
export async function startCoordinator(opts: CoordinatorOptions): Promise<RunningCoordinator> {
  const config = resolveCoordinatorConfig(opts);
  const logger: LogLevel[] = config.quiet ? ['error', 'warn'] : ['error', 'warn', 'log'];
  const app = await NestFactory.create(AppModule.forRoot(config), { logger });
  app.enableShutdownHooks();
  if (config.swagger) {
    const doc = SwaggerModule.createDocument(app, new DocumentBuilder()
      .setTitle('TensorFleet coordinator')
      .setDescription('Submit and control distributed training jobs; watch workers, metrics and checkpoints.')
      .setVersion('0.1.0')
      .addBearerAuth()
      .build());
    // The request bodies' schemas come from @tensorfleet/control's declarations (with their
    // nesting, defaults and descriptions); the handlers refer to them by name.
    const specSchemas = { ...jobSpecSchema.openApiComponents(), ...resumeJobSchema.openApiComponents(), ...pauseJobSchema.openApiComponents() } as NonNullable<typeof doc.components>['schemas'];
    doc.components = { ...doc.components, schemas: { ...doc.components?.schemas, ...specSchemas } };
    SwaggerModule.setup('docs', app, doc, { jsonDocumentUrl: 'docs-json' });
  }
  await app.listen(config.port, config.host);
  const addr = app.getHttpServer().address() as { port: number };
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  let closed: Promise<void> | null = null;
  return {
    app, config, port: addr.port, url: `http://${host}:${addr.port}`,
    close: () => (closed ??= app.close()),
  };
}
