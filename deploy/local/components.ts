import { controlPlane } from './actions/control-plane.ts';
import { forwarders } from './actions/forwarders.ts';
import { controller, nodeAgent } from './actions/kovn.ts';
import { nodeComponents } from './actions/node.ts';
import { ovnCentral } from './actions/ovn-central.ts';
import { echoServers } from './actions/outside.ts';
import { temporal } from './actions/temporal.ts';
import type { Component } from './actions/types.ts';
import type { BoxShape } from './up.ts';

/**
 * Every daemon of a box of this shape: the central ones, then each node's (kovn's controller and node
 * agents unless it is bare). `bundle` is the workflow bundle kovn's daemons are configured with.
 */
export function boxComponents(shape: BoxShape, bundle = ''): { central: Component[]; nodes: Component[][] } {
  const kovn = !shape.bare;
  return {
    central: [...controlPlane(shape.ipFamily), temporal(), ...ovnCentral(), ...forwarders(['apiserver', 'temporal', 'temporal-ui']), ...echoServers(shape.ipFamily),
      ...(kovn ? [controller(shape.ipFamily, bundle)] : [])],
    nodes: Array.from({ length: shape.nodes }, (_, k) => [...nodeComponents(k + 1, shape.ipFamily === 'dual'), ...(kovn ? [nodeAgent(k + 1, shape.ipFamily, bundle)] : [])]),
  };
}
