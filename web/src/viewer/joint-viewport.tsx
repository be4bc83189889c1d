import { Enums, RenderingEngine, utilities, type Types } from '@cornerstonejs/core';
import { wadouri } from '@cornerstonejs/dicom-image-loader';
import { Enums as ToolEnums, PanTool, ToolGroupManager, WindowLevelTool, ZoomTool } from '@cornerstonejs/tools';
import { useEffect, useId, useRef, useState } from 'react';
import { initCornerstone } from './cornerstone';
import { retrievePart10, type InstanceUids } from './retrieve';

/** One joint image: the instance, its frame (0-based, as the API counts) and the joint's region in pixels. */
export interface ViewerImage {
  uids: InstanceUids;
  frame: number;
  numberOfFrames: number;
  roi: { x: number; y: number; width: number; height: number };
}

const TOOLS = { windowLevel: WindowLevelTool.toolName, zoom: ZoomTool.toolName, pan: PanTool.toolName } as const;
type ToolKey = keyof typeof TOOLS;
const TOOL_LABELS: Record<ToolKey, string> = { windowLevel: 'Window/level', zoom: 'Zoom', pan: 'Pan' };
const { MouseBindings } = ToolEnums;

/** The outline of the region on the canvas, in CSS pixels. */
interface Overlay {
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * The joint image in a cornerstone3D stack viewport, retrieved by WADO-RS with the reader's token (the
 * de-identified object, nothing else of the patient) and decoded by the DICOM image loader in its web worker.
 * The left button drives the chosen tool (window/level first), the middle button pans, the right button and the
 * wheel zoom. The joint's region is outlined over the image and follows zoom and pan.
 *
 * The viewport never takes the keyboard focus (cornerstone makes its element focusable and swallows the keys it
 * receives), so digits, N and the arrows always reach the reading page's grading.
 */
export default function JointViewport({ image }: { image: ViewerImage }) {
  const reactId = useId().replace(/:/g, '');
  const element = useRef<HTMLDivElement>(null);
  const [viewport, setViewport] = useState<Types.IStackViewport | null>(null);
  // The image on screen, with the instance and frame it shows (props may already name the next one).
  const [shown, setShown] = useState<{ imageId: string; frameKey: string } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [overlay, setOverlay] = useState<Overlay | null>(null);
  const [voi, setVoi] = useState<{ windowWidth: number; windowCenter: number } | null>(null);
  const [primary, setPrimary] = useState<ToolKey>('windowLevel');
  const engineId = `facet-engine-${reactId}`;
  const viewportId = `facet-viewport-${reactId}`;
  const toolGroupId = `facet-tools-${reactId}`;

  // The rendering engine, the viewport and its tools, for as long as the component is shown.
  useEffect(() => {
    const el = element.current;
    if (!el) return;
    let cancelled = false;
    let engine: RenderingEngine | null = null;
    initCornerstone()
      .then(() => {
        if (cancelled) return;
        engine = new RenderingEngine(engineId);
        engine.enableElement({ viewportId, type: Enums.ViewportType.STACK, element: el, defaultOptions: { background: [0, 0, 0] } });
        el.removeAttribute('tabindex');
        const group = ToolGroupManager.createToolGroup(toolGroupId)!;
        for (const name of Object.values(TOOLS)) group.addTool(name);
        group.setToolActive(TOOLS.windowLevel, { bindings: [{ mouseButton: MouseBindings.Primary }] });
        group.setToolActive(TOOLS.pan, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
        group.setToolActive(TOOLS.zoom, { bindings: [{ mouseButton: MouseBindings.Secondary }, { mouseButton: MouseBindings.Wheel }] });
        group.addViewport(viewportId, engineId);
        setViewport(engine.getViewport(viewportId) as Types.IStackViewport);
      })
      .catch((e: unknown) => setError(`The viewer could not start: ${String(e)}`));
    const noMenu = (event: Event) => event.preventDefault(); // the right button zooms
    el.addEventListener('contextmenu', noMenu);
    return () => {
      cancelled = true;
      el.removeEventListener('contextmenu', noMenu);
      ToolGroupManager.destroyToolGroup(toolGroupId);
      (engine as RenderingEngine | null)?.destroy();
      setViewport(null);
    };
  }, [engineId, viewportId, toolGroupId]);

  // The image: retrieved, handed to the loader as a local file, shown with the window its object carries.
  const { study, series, instance } = image.uids;
  const frameKey = `${instance}#${image.frame}`;
  useEffect(() => {
    if (!viewport) return;
    let cancelled = false;
    let fileUri: string | null = null;
    setShown(null);
    setOverlay(null);
    setVoi(null);
    setError(null);
    retrievePart10({ study, series, instance })
      .then(async (bytes) => {
        if (cancelled) return;
        fileUri = wadouri.fileManager.add(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'application/dicom' }));
        // The loader counts frames from 1; the API from 0. A single-frame object is named without a frame.
        const id = image.numberOfFrames > 1 ? `${fileUri}?frame=${image.frame + 1}` : fileUri;
        await viewport.setStack([id]);
        if (cancelled) return;
        viewport.render();
        setShown({ imageId: id, frameKey });
      })
      .catch((e: unknown) => {
        if (!cancelled) setError(e instanceof Error ? `${'code' in e ? `${String(e.code)}: ` : ''}${e.message}` : String(e));
      });
    return () => {
      cancelled = true;
      if (fileUri) {
        wadouri.dataSetCacheManager.unload(fileUri);
        wadouri.fileManager.remove(Number(fileUri.slice('dicomfile:'.length)));
      }
    };
  }, [viewport, study, series, instance, frameKey, image.frame, image.numberOfFrames]);

  // The region's outline and the window readout follow every render (zoom, pan, window/level, resize).
  const { x, y, width, height } = image.roi;
  const imageId = shown?.frameKey === frameKey ? shown.imageId : null;
  useEffect(() => {
    const el = element.current;
    if (!viewport || !imageId || !el) return;
    const update = () => {
      const topLeft = viewport.worldToCanvas(utilities.imageToWorldCoords(imageId, [x, y]) as Types.Point3);
      const bottomRight = viewport.worldToCanvas(utilities.imageToWorldCoords(imageId, [x + width, y + height]) as Types.Point3);
      setOverlay({
        x: Math.min(topLeft[0], bottomRight[0]),
        y: Math.min(topLeft[1], bottomRight[1]),
        width: Math.abs(bottomRight[0] - topLeft[0]),
        height: Math.abs(bottomRight[1] - topLeft[1]),
      });
      const range = viewport.getProperties().voiRange;
      if (range) setVoi(utilities.windowLevel.toWindowLevel(range.lower, range.upper));
    };
    update();
    el.addEventListener(Enums.Events.IMAGE_RENDERED, update);
    el.addEventListener(Enums.Events.CAMERA_MODIFIED, update);
    const resize = new ResizeObserver(() => viewport.getRenderingEngine()?.resize(true, true));
    resize.observe(el);
    return () => {
      el.removeEventListener(Enums.Events.IMAGE_RENDERED, update);
      el.removeEventListener(Enums.Events.CAMERA_MODIFIED, update);
      resize.disconnect();
    };
  }, [viewport, imageId, x, y, width, height]);

  const choose = (tool: ToolKey) => {
    const group = ToolGroupManager.getToolGroup(toolGroupId);
    if (!group || tool === primary) return;
    group.setToolPassive(TOOLS[primary]); // drops only its left-button binding
    group.setToolActive(TOOLS[tool], { bindings: [{ mouseButton: MouseBindings.Primary }] });
    setPrimary(tool);
  };
  const reset = () => {
    if (!viewport) return;
    viewport.resetCamera();
    viewport.resetProperties();
    viewport.render();
  };

  return (
    <figure
      className="joint-viewport"
      data-testid="joint-viewport"
      data-state={error ? 'error' : imageId ? 'loaded' : 'loading'}
      data-instance={imageId ? instance : undefined}
    >
      <div className="viewport-tools" role="toolbar" aria-label="Viewer tools">
        {(Object.keys(TOOLS) as ToolKey[]).map((tool) => (
          <button key={tool} type="button" aria-pressed={tool === primary} onClick={() => choose(tool)}>
            {TOOL_LABELS[tool]}
          </button>
        ))}
        <button type="button" onClick={reset}>
          Reset
        </button>
        {voi ? (
          <span data-testid="window" className="window-readout">
            W {Math.round(voi.windowWidth)} · L {Math.round(voi.windowCenter)}
          </span>
        ) : null}
      </div>
      <div className="viewport-frame">
        <div ref={element} className="viewport-element" data-testid="viewport-element" />
        {overlay && imageId ? (
          <svg className="viewport-overlay" aria-hidden="true">
            <rect data-testid="roi-outline" x={overlay.x} y={overlay.y} width={overlay.width} height={overlay.height} />
          </svg>
        ) : null}
      </div>
      {error ? (
        <figcaption className="error" role="alert">
          {error}
        </figcaption>
      ) : (
        <figcaption className="hint">Left drag: {TOOL_LABELS[primary].toLowerCase()} · middle drag: pan · right drag or wheel: zoom</figcaption>
      )}
    </figure>
  );
}
