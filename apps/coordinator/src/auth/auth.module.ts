import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ApiTokenGuard } from './api-token.guard';

/** Bearer tokens on every route of every module (see ApiTokenGuard). */
@Module({ providers: [{ provide: APP_GUARD, useClass: ApiTokenGuard }] })
export class AuthModule {}
