import { createHash, timingSafeEqual } from 'node:crypto';
import { ForbiddenException, Inject, Injectable, SetMetadata, UnauthorizedException, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { COORDINATOR_CONFIG, type CoordinatorConfig } from '../config/coordinator-config';

const PUBLIC = 'tensorfleet:public';
/** Marks a controller or route as open without a token (health probes, the dashboard's HTML). */
export const Public = () => SetMetadata(PUBLIC, true);

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * `Authorization: Bearer <token>` on every route not marked @Public(), once any token is
 * configured: none or an unknown one is a 401, a read-only one on a write is a 403.
 */
@Injectable()
export class ApiTokenGuard implements CanActivate {
  // Tokens compared as SHA-256 digests: equal lengths for timingSafeEqual, and no early exit on a prefix.
  private readonly tokens: { digest: Buffer; access: 'write' | 'read' }[];

  constructor(@Inject(COORDINATOR_CONFIG) config: CoordinatorConfig, private readonly reflector: Reflector) {
    this.tokens = config.apiTokens.map((t) => ({ digest: sha256(t.token), access: t.access }));
  }

  canActivate(ctx: ExecutionContext): boolean {
    if (this.tokens.length === 0) return true;
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC, [ctx.getHandler(), ctx.getClass()])) return true;
    const req = ctx.switchToHttp().getRequest<{ method: string; headers: Record<string, string | undefined> }>();
    const match = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!match) throw new UnauthorizedException('missing bearer token: send "Authorization: Bearer <token>" (the CLI reads FLEET_API_TOKEN)');
    const digest = sha256(match[1]);
    const found = this.tokens.find((t) => timingSafeEqual(t.digest, digest));
    if (!found) throw new UnauthorizedException('unknown bearer token: use one of the coordinator\'s FLEET_API_TOKEN or FLEET_API_READ_TOKEN');
    if (found.access === 'read' && !READ_METHODS.has(req.method)) {
      throw new ForbiddenException(`a read-only token cannot ${req.method}: use a FLEET_API_TOKEN (write) token`);
    }
    return true;
  }
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}
