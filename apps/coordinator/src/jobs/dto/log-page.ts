import { BadRequestException } from '@nestjs/common';
import { ApiProperty } from '@nestjs/swagger';
import { LOG_LEVELS, type LogLevel, type LogLineView, type LogPageView } from '@tensorfleet/control';

/** OpenAPI description of @tensorfleet/control's LogLineView. */
export class LogLineDoc implements LogLineView {
  @ApiProperty({ description: 'Stream id: pass it as `after` to read the lines after this one' }) id!: string;
  @ApiProperty({ description: 'ms since the epoch' }) ts!: number;
  @ApiProperty() rank!: number;
  @ApiProperty({ enum: [...LOG_LEVELS] }) level!: LogLevel;
  @ApiProperty() workerId!: string;
  @ApiProperty() msg!: string;
}

/** OpenAPI description of @tensorfleet/control's LogPageView. */
export class LogPageDoc implements LogPageView {
  @ApiProperty({ type: [LogLineDoc], description: 'Oldest first' }) lines!: LogLineDoc[];
  @ApiProperty({ description: 'Cursor for the next page (`after`); the same as sent when there is nothing new' }) next!: string;
}

export interface LogQuery { after: string; limit: number; rank?: number }

/** The query of GET /jobs/:id/logs, checked: a 400 names the parameter and what it takes. */
export function parseLogQuery(q: { after?: string; limit?: string; rank?: string }): LogQuery {
  const errors: string[] = [];
  const after = q.after || '0';
  if (!/^(0|-|\d+-\d+|\d+)$/.test(after)) errors.push(`after: "${after}" is not a log line id (e.g. 1733580000000-0) nor 0`);
  const limit = q.limit === undefined || q.limit === '' ? 1000 : Number(q.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) errors.push(`limit: "${q.limit}" must be a whole number from 1 to 10000`);
  const rank = q.rank === undefined || q.rank === '' ? undefined : Number(q.rank);
  if (rank !== undefined && (!Number.isInteger(rank) || rank < 0)) errors.push(`rank: "${q.rank}" must be a whole number >= 0`);
  if (errors.length) throw new BadRequestException({ statusCode: 400, error: 'Bad Request', message: errors, fields: errors.map((e) => e.split(':')[0]) });
  return { after, limit, ...(rank !== undefined ? { rank } : {}) };
}
