import * as Plot from '@observablehq/plot';
import { useEffect, useRef } from 'react';
import { downloadPng, downloadSvg } from './export';

/**
 * One Observable Plot chart, drawn into the page as SVG, with SVG and PNG downloads of exactly what is shown.
 * The options carry no legend (labels are drawn as text), so Plot returns one bare SVG element.
 */
export function PlotFigure({ options, name, title }: { options: Plot.PlotOptions; name: string; title: string }) {
  const holder = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const chart = Plot.plot({ style: { fontSize: '12px', background: 'white' }, ...options });
    holder.current?.replaceChildren(chart);
    return () => chart.remove();
  }, [options]);
  const svg = () => holder.current?.querySelector('svg') ?? null;
  return (
    <figure className="chart" data-testid={`chart-${name}`}>
      <figcaption>
        {title}
        <button
          type="button"
          onClick={() => {
            const element = svg();
            if (element) downloadSvg(element, `${name}.svg`);
          }}
        >
          SVG
        </button>
        <button
          type="button"
          onClick={() => {
            const element = svg();
            if (element) void downloadPng(element, `${name}.png`);
          }}
        >
          PNG
        </button>
      </figcaption>
      <div ref={holder} />
    </figure>
  );
}
