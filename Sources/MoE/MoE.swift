/// FrankenMoE assembly (`crucible moe`): mergekit-moe recipes turned into Mixtral / Qwen-MoE checkpoints,
/// with gate rows computed by the bundled engine.
public enum MoE {}
