// Interactions over time as stacked bars (Chart.js, registered piece by piece so only bars are shipped).
// The canvas carries a text summary for screen readers; the timeline table holds the same facts.

import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, Tooltip } from "chart.js";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);

export interface Point {
  at: string;
  kind: string;
  machine: boolean;
}

interface Buckets {
  labels: string[];
  opens: number[];
  clicks: number[];
  other: number[];
  machine: number[];
}

/** bucket counts interactions per hour (or per day when they span more than two days). */
export function bucket(points: Point[]): Buckets {
  const times = points.map((p) => new Date(p.at).getTime()).filter((t) => !Number.isNaN(t));
  const out: Buckets = { labels: [], opens: [], clicks: [], other: [], machine: [] };
  if (times.length === 0) return out;
  const min = Math.min(...times);
  const max = Math.max(...times);
  const daily = max - min > 2 * 86400_000;
  const step = daily ? 86400_000 : 3600_000;
  const start = new Date(min);
  if (daily) start.setHours(0, 0, 0, 0);
  else start.setMinutes(0, 0, 0);
  const n = Math.floor((max - start.getTime()) / step) + 1;
  const fmt = new Intl.DateTimeFormat(undefined, daily ? { dateStyle: "medium" } : { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
  for (let i = 0; i < n; i++) {
    out.labels.push(fmt.format(new Date(start.getTime() + i * step)));
    out.opens.push(0);
    out.clicks.push(0);
    out.other.push(0);
    out.machine.push(0);
  }
  for (const p of points) {
    const t = new Date(p.at).getTime();
    if (Number.isNaN(t)) continue;
    const i = Math.floor((t - start.getTime()) / step);
    if (p.machine) out.machine[i]++;
    else if (p.kind === "OPENED") out.opens[i]++;
    else if (p.kind === "LINK_CLICKED") out.clicks[i]++;
    else out.other[i]++;
  }
  return out;
}

/** drawChart replaces the chart on canvas with one of points; call the returned function to free it. */
export function drawChart(canvas: HTMLCanvasElement, points: Point[]): () => void {
  const b = bucket(points);
  const people = points.filter((p) => !p.machine).length;
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", `Interactions over time: ${people} by people and ${points.length - people} by machines, in ${b.labels.length} periods.`);
  const chart = new Chart(canvas, {
    type: "bar",
    data: {
      labels: b.labels,
      datasets: [
        { label: "Opens", data: b.opens, backgroundColor: "#0f5fb8" },
        { label: "Clicks", data: b.clicks, backgroundColor: "#a14a00" },
        { label: "Other", data: b.other, backgroundColor: "#2e7d32" },
        { label: "Machine", data: b.machine, backgroundColor: "#8a8a8a" },
      ],
    },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
      plugins: { legend: { position: "bottom" } },
    },
  });
  return () => chart.destroy();
}
