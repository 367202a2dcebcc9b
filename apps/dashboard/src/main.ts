// The dashboard's entry: a hash router (#/ the cluster, #/jobs/<id> a job) over the
// coordinator's REST API, which serves this page too.
import { DashboardApi, ApiError, type JobView, type WorkerView } from './api/client';
import { TokenStore } from './api/token-store';
import { h } from './dom';
import { renderCluster } from './views/cluster-view';
import { JobPage } from './views/job-page';

const POLL_MS = 2000;
const tokens = new TokenStore(window.localStorage, (msg) => window.prompt(msg, ''));
tokens.takeFromUrl(window.location, window.history);
const api = new DashboardApi(tokens);
const view = document.getElementById('view')!;
const summary = document.getElementById('summary')!;
const banner = document.getElementById('banner')!;

let page: JobPage | null = null;
let clusterTimer: ReturnType<typeof setInterval> | undefined;

function showError(e: unknown): void {
  const err = e as Error;
  const unauthorized = e instanceof ApiError && e.status === 401;
  banner.hidden = false;
  summary.textContent = unauthorized ? 'no API token' : 'coordinator unreachable';
  banner.replaceChildren(
    unauthorized ? 'This coordinator needs an API token. ' : `Coordinator unreachable or failing: ${err.message} `,
    unauthorized ? h('button', {
      id: 'enter-token', onclick: () => {
        const t = window.prompt('API token (FLEET_API_TOKEN, or FLEET_API_READ_TOKEN to only watch):', '');
        if (t && t.trim()) { tokens.set(t.trim()); route(); }
      },
    }, 'Enter token') : '',
  );
}

async function refreshSummary(): Promise<{ workers: WorkerView[]; jobs: JobView[] } | null> {
  try {
    const [workers, jobs] = await Promise.all([api.workers(), api.jobs()]);
    banner.hidden = true;
    const alive = workers.filter((w) => w.alive);
    const count = (s: string) => jobs.filter((j) => j.state === s).length;
    summary.textContent = `${alive.length} workers alive, ${alive.filter((w) => w.state === 'busy').length} busy · `
      + `${count('running')} running, ${count('queued') + count('scheduled')} queued · ${new Date().toLocaleTimeString()}`;
    return { workers, jobs };
  } catch (e) {
    showError(e);
    return null;
  }
}

async function pollCluster(): Promise<void> {
  const r = await refreshSummary();
  if (r && !page) renderCluster(view, r.workers, r.jobs);
}

function route(): void {
  page?.stop();
  page = null;
  clearInterval(clusterTimer);
  const m = /^#\/jobs\/(.+)$/.exec(window.location.hash);
  if (m) {
    page = new JobPage(api, view, decodeURIComponent(m[1]));
    void page.start();
    void refreshSummary();
    clusterTimer = setInterval(() => void refreshSummary(), POLL_MS * 2);
  } else {
    view.replaceChildren(h('p', { class: 'muted' }, 'loading…'));
    void pollCluster();
    clusterTimer = setInterval(() => void pollCluster(), POLL_MS);
  }
}

window.addEventListener('hashchange', route);
route();
