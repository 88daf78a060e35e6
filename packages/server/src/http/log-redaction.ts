import { PREVIEW_LOG_REDACTION } from '../ports/preview-access.js';
import { CREDENTIAL_LOG_PATHS } from './websocket-bearer.js';

/**
 * What a worker's or coordinator's logs never show: API keys (header or WebSocket subprotocol),
 * sessions' access tokens, preview cookies and signed-URL tokens in request URLs.
 */
export const LOG_REDACTION = {
  paths: [...new Set([...PREVIEW_LOG_REDACTION.paths, ...CREDENTIAL_LOG_PATHS])],
  censor: PREVIEW_LOG_REDACTION.censor,
};
