import { Injectable } from '@nestjs/common';
import { listModels, type ModelInfo } from '@tensorfleet/models';

/** The registered models (@tensorfleet/models' listModels()), read once. */
@Injectable()
export class ModelCatalog {
  private cache: ModelInfo[] | null = null;

  list(): ModelInfo[] {
    return (this.cache ??= listModels());
  }

  get(name: string): ModelInfo | undefined {
    return this.list().find((m) => m.name === name);
  }
}
