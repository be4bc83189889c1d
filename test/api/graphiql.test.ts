import { useTestNode } from '../helpers/lifecycle';

describe('GraphiQL page', () => {
  const node = useTestNode();

  it('serves an inline script that parses (a syntax error leaves the page blank) and only local assets', async () => {
    const html = await (await fetch(`${node().url}/graphiql`)).text();
    const inline = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]);
    expect(inline).toHaveLength(1);
    expect(() => new Function(inline[0])).not.toThrow();
    expect(inline[0]).toContain('defaultQuery');
    const sources = [...html.matchAll(/src="([^"]+)"/g)].map((m) => m[1]);
    expect(sources.every((s) => s.startsWith('/graphiql/assets/'))).toBe(true);
  });
});
