export { CollectiveNode, NodeStats } from './node';
export { CollectiveError, CollectiveErrorCode } from './errors';
export { DEFAULT_BUCKET_BYTES, planBuckets } from './bucketing';
export { encodeF16, encodeBF16, decodeF16Into, decodeBF16Into, toF16, fromF16 } from './half';
export * from './types';
export { CurveKeyPair, CurveMode, CURVE_MODES, JoinCurve, curveMembers, curveModeFromEnv, newCurveKeyPair } from './curve';
export { Refusal, RefusalReason } from './zap';
export { topologyAllReduce, chooseAlgorithm, groupByHost, AllReduceAlgorithm, TopologyAllReduceOptions, DEFAULT_HIERARCHICAL_MIN_BYTES, DEFAULT_CHUNK_BYTES } from './hierarchical';
export { runAllreduceBench, formatBench, ceilings, AllreduceBenchOptions, AllreduceBenchResult, AllreduceRow, P2PRow, RankCpu, Ceiling, BenchTransport, BenchSecurity } from './bench/allreduce-bench';
export { runTopologyBench, formatTopologyBench, interHostBytesPerByte, idealSpeedup, TopologyBenchOptions, TopologyRow } from './bench/topology-bench';
export * from './cost-model/cost-model';
export { costModelReport, formatCostModel, CostModelOptions, CostModelReport, CheckRow } from './cost-model/cost-model-report';
// simulated hosts (network namespaces) and link faults, for the cross-process tests of test/
export { createHostNetwork, withHostNetwork, destroyOnExit, hostPlacement, railOf, railTxBytes, netnsUnavailable, shapeLink, setLinkLoss, clearLinkLoss, droppedPackets, cutLink, restoreLink, linkIsUp, HostNetwork, HostNetworkOptions, HostRail, SimulatedHost } from './testing/netns';
