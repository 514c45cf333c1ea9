import ArchitectureDefinitions
import XCTest

/// The GGUF name tables of the architecture definitions read both ways: every llama.cpp name maps to a Hugging Face
/// name that maps back to it.
final class GGUFNameTableTests: XCTestCase {
    func testEveryDefinedNameRoundTrips() throws {
        let tables = ArchitectureDefinition.all.compactMap { $0.gguf?.names }
        XCTAssertFalse(tables.isEmpty)
        for table in tables {
            for (gguf, hf) in table.global {
                XCTAssertEqual(table.ggufName(hf: hf), gguf)
            }
            for base in table.layer.keys {
                let hf = try XCTUnwrap(table.hfName(layer: 12, base: base, suffix: "bias"))
                XCTAssertEqual(table.ggufName(hf: hf), "blk.12.\(base).bias", hf)
            }
            for base in table.expert.keys {
                let hf = try XCTUnwrap(table.hfName(layer: 3, base: base, expert: 10, suffix: "weight"))
                XCTAssertEqual(table.ggufName(hf: hf), "blk.3.\(base).10.weight", hf)
            }
            XCTAssertNil(table.hfName(layer: 0, base: "no_such_tensor", suffix: "weight"))
            XCTAssertNil(table.ggufName(hf: "model.layers.0.self_attn.no_such_proj.weight"))
        }
    }

    func testLlamaNamesAreLlamaCpps() {
        let table = ArchitectureDefinition.llama.gguf!.names
        XCTAssertEqual(table.hfName(layer: 0, base: "attn_q", suffix: "weight"), "model.layers.0.self_attn.q_proj.weight")
        XCTAssertEqual(table.ggufName(hf: "model.layers.5.mlp.down_proj.weight"), "blk.5.ffn_down.weight")
        XCTAssertEqual(table.hfName(layer: 2, base: "ffn_up", expert: 1, suffix: "weight"),
                       "model.layers.2.block_sparse_moe.experts.1.w3.weight")
        XCTAssertEqual(table.ggufName(hf: "lm_head.weight"), "output.weight")
    }
}
