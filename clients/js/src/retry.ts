// When to reconnect, and after how long (docs/PROTOCOL.md, close codes).

/** Close codes after which a client must not reconnect by itself. */
const TERMINAL = new Set([1000, 1009, 4403]);

/** What to do after the socket closed with `code`. */
export function afterClose(code: number, canRenewToken: boolean): "reconnect" | "stop" {
  if (TERMINAL.has(code)) return "stop";
  // 4401: the token was refused or expired; only a new one helps.
  if (code === 4401 && !canRenewToken) return "stop";
  return "reconnect";
}

/** The pause before attempt `attempt` (0 first): exponential, capped, with full jitter in [50%, 150%]. */
export function backoff(attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(base * (0.5 + random()));
}

/** Milliseconds until a JWT's `exp`, or `null` when it has none or cannot be read. */
export function untilExpiry(token: string, now: number = Date.now()): number | null {
  const payload = token.split(".")[1];
  if (!payload) return null;
  try {
    const json = JSON.parse(decodeBase64Url(payload));
    return typeof json.exp === "number" ? json.exp * 1000 - now : null;
  } catch {
    return null;
  }
}

function decodeBase64Url(text: string): string {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
  const binary = atob(padded);
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}
