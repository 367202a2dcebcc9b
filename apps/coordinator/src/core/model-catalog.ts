import { Injectable } from '@nestjs/common';
import * as models from '@tensorfleet/models';

export interface CatalogModel {
  name: string;
  family?: string;
  defaultInputSize?: number;
  numClasses?: number;
}

/** The registered models (@tensorfleet/models' listModels()), read once. */
@Injectable()
export class ModelCatalog {
  private cache: CatalogModel[] | null = null;

  list(): CatalogModel[] {
    if (!this.cache) {
      // Looked up at run time so the coordinator builds against any stage of the models lib.
      const listModels = (models as unknown as { listModels?: () => CatalogModel[] }).listModels;
      if (typeof listModels !== 'function') throw new Error('@tensorfleet/models exports no listModels(): rebuild libs/models');
      this.cache = listModels();
    }
    return this.cache;
  }

  get(name: string): CatalogModel | undefined {
    return this.list().find((m) => m.name === name);
  }
}
