import { createHash, timingSafeEqual } from 'node:crypto';
import { ForbiddenException, Inject, Injectable, SetMetadata, UnauthorizedException, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { parseScope } from '@tensorfleet/control';
import { COORDINATOR_CONFIG, type CoordinatorConfig } from '../config/coordinator-config';
import { PRINCIPAL, type Principal } from './principal';

const PUBLIC = 'tensorfleet:public';
/** Marks a controller or route as open without a token (health probes, the dashboard's HTML). */
export const Public = () => SetMetadata(PUBLIC, true);

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * `Authorization: Bearer <token>` on every route not marked @Public(), once any token is
 * configured: none or an unknown one is a 401, a read-only one on a write is a 403. GET, HEAD
 * and OPTIONS also take `?access_token=<token>` (the dashboard's event stream needs it).
 */
@Injectable()
export class ApiTokenGuard implements CanActivate {
  // Tokens compared as SHA-256 digests: equal lengths for timingSafeEqual, and no early exit on a prefix.
  private readonly tokens: { digest: Buffer; principal: Principal }[];

  constructor(@Inject(COORDINATOR_CONFIG) config: CoordinatorConfig, private readonly reflector: Reflector) {
    this.tokens = config.apiTokens.map((t) => ({
      digest: sha256(t.token),
      principal: { name: t.name, access: t.access, scopes: t.scopes ? t.scopes.map(parseScope) : null },
    }));
  }

  canActivate(ctx: ExecutionContext): boolean {
    if (this.tokens.length === 0) return true;
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC, [ctx.getHandler(), ctx.getClass()])) return true;
    const req = ctx.switchToHttp().getRequest<{ method: string; headers: Record<string, string | undefined>; query?: Record<string, unknown>; [PRINCIPAL]?: Principal }>();
    const match = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    // A browser's EventSource cannot set headers: reads may carry the token as ?access_token=
    // (RFC 6750 §2.3); writes must use the header, so a token in a link can never change anything.
    const query = typeof req.query?.access_token === 'string' && READ_METHODS.has(req.method) ? req.query.access_token : null;
    const token = match?.[1] ?? query;
    if (!token) throw new UnauthorizedException('missing bearer token: send "Authorization: Bearer <token>" (the CLI reads FLEET_API_TOKEN)');
    const digest = sha256(token);
    const found = this.tokens.find((t) => timingSafeEqual(t.digest, digest));
    if (!found) throw new UnauthorizedException('unknown bearer token: use one of the coordinator\'s FLEET_API_TOKEN or FLEET_API_READ_TOKEN');
    if (found.principal.access === 'read' && !READ_METHODS.has(req.method)) {
      throw new ForbiddenException(`a read-only token cannot ${req.method}: use a FLEET_API_TOKEN (write) token`);
    }
    // The handlers check what a scoped token may see and name (principal.ts).
    req[PRINCIPAL] = found.principal;
    return true;
  }
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}
