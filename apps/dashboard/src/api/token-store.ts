/**
 * The coordinator's API token, when it has any (FLEET_API_TOKEN or FLEET_API_READ_TOKEN): given
 * once as `#token=…` in the URL or asked for on a 401, kept in localStorage. Every request sends
 * it as a bearer header, the event stream as `?access_token=` (EventSource cannot set headers).
 */
export class TokenStore {
  static readonly KEY = 'fleet.apiToken';
  private declined = false;

  constructor(private readonly storage: Storage, private readonly ask: (message: string) => string | null) {}

  get(): string {
    return this.storage.getItem(TokenStore.KEY) ?? '';
  }

  set(token: string): void {
    this.storage.setItem(TokenStore.KEY, token);
    this.declined = false;
  }

  /** Takes `#token=…` from the URL into storage and removes it from the address bar. */
  takeFromUrl(loc: Location, history: History): void {
    const m = /(?:^#|&)token=([^&]+)/.exec(loc.hash);
    if (!m) return;
    this.set(decodeURIComponent(m[1]));
    const rest = loc.hash.replace(/(?:^#|&)token=[^&]+/, '').replace(/^&/, '');
    history.replaceState(null, '', loc.pathname + loc.search + (rest ? `#${rest.replace(/^#?/, '')}` : ''));
  }

  /**
   * A request sent with `used` got a 401: true if there is a token to retry with, either one
   * stored meanwhile (another request asked already) or one the user types now. After the user
   * declines, the page stops asking until `set()` (the banner's button) is called.
   */
  renew(used: string): boolean {
    if (this.get() !== used) return true;
    if (this.declined) return false;
    const t = this.ask(used
      ? 'The stored API token was refused. Enter a FLEET_API_TOKEN (or FLEET_API_READ_TOKEN to only watch):'
      : 'This coordinator needs an API token (FLEET_API_TOKEN, or FLEET_API_READ_TOKEN to only watch):');
    if (t && t.trim()) {
      this.set(t.trim());
      return true;
    }
    this.declined = true;
    return false;
  }
}
