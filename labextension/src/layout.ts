/**
 * Layout: DOT in, positions out. Graphviz compiled to WebAssembly runs in the browser (no system `dot`), and we
 * ask it for JSON, not SVG: the view draws every element itself and puts user text in with `textContent`, so no
 * markup from the kernel ever reaches the page.
 */
import type { Graphviz } from '@hpcc-js/wasm-graphviz';

export interface IPoint {
  x: number;
  y: number;
}

export interface INodeBox {
  id: string;
  x: number; // centre, in SVG coordinates (y grows downwards)
  y: number;
  width: number;
  height: number;
}

export interface IEdgePath {
  tail: string;
  head: string;
  curve: IPoint[]; // cubic B-spline control points: start, then (c1, c2, end) triples
  arrow: IPoint[]; // the arrowhead polygon
}

export interface ILayout {
  width: number;
  height: number;
  nodes: Map<string, INodeBox>;
  edges: IEdgePath[];
}

interface IDrawOp {
  op: string;
  points?: number[][];
}

interface IGvObject {
  _gvid: number;
  name: string;
  pos?: string;
  width?: string;
  height?: string;
}

interface IGvEdge {
  tail: number;
  head: number;
  _draw_?: IDrawOp[];
  _hdraw_?: IDrawOp[];
}

interface IGvJson {
  bb: string;
  objects?: IGvObject[];
  edges?: IGvEdge[];
}

let graphviz: Promise<Graphviz> | null = null;

/** Load the WebAssembly module once, on first use (it is a separate chunk of the extension). */
export function loadGraphviz(): Promise<Graphviz> {
  if (graphviz === null) {
    graphviz = import('@hpcc-js/wasm-graphviz').then(module => module.Graphviz.load());
  }
  return graphviz;
}

export async function layoutDot(dot: string): Promise<ILayout> {
  const engine = await loadGraphviz();
  return parseLayout(JSON.parse(engine.layout(dot, 'json', 'dot')) as IGvJson);
}

const POINTS_PER_INCH = 72;

function parseLayout(json: IGvJson): ILayout {
  const [, , right, top] = json.bb.split(',').map(Number);
  const flip = (point: number[]): IPoint => ({ x: point[0], y: top - point[1] });
  const nodes = new Map<string, INodeBox>();
  const names = new Map<number, string>();
  for (const object of json.objects ?? []) {
    names.set(object._gvid, object.name);
    if (object.pos === undefined) {
      continue; // a subgraph
    }
    const [x, y] = object.pos.split(',').map(Number);
    nodes.set(object.name, {
      id: object.name,
      ...flip([x, y]),
      width: Number(object.width) * POINTS_PER_INCH,
      height: Number(object.height) * POINTS_PER_INCH
    });
  }
  const edges: IEdgePath[] = [];
  for (const edge of json.edges ?? []) {
    const curve = (edge._draw_ ?? []).find(op => op.op === 'b' || op.op === 'B');
    const arrow = (edge._hdraw_ ?? []).find(op => op.op === 'P' || op.op === 'p');
    edges.push({
      tail: names.get(edge.tail) ?? '',
      head: names.get(edge.head) ?? '',
      curve: (curve?.points ?? []).map(flip),
      arrow: (arrow?.points ?? []).map(flip)
    });
  }
  return { width: right, height: top, nodes, edges };
}
