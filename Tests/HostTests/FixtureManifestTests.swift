import Foundation
import TestSupport
import XCTest

/// The SHA-256 used to check the fixtures, on the standard vectors (FIPS 180-4 examples and NIST's million `a`s)
/// and on lengths around the 55/56/64-byte padding edges, whole and fed in pieces.
final class SHA256Tests: XCTestCase {
    func testStandardVectors() {
        XCTAssertEqual(SHA256.hex(Data()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(Data("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex(Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(SHA256.hex(Data(("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                                        + "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu").utf8)),
                       "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
        XCTAssertEqual(SHA256.hex(Data(repeating: UInt8(ascii: "a"), count: 1_000_000)),
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// Bytes i % 251, digests from Python's hashlib.
    func testPaddingEdgesWholeAndInPieces() {
        let expected: [Int: String] = [
            55: "463eb28e72f82e0a96c0a4cc53690c571281131f672aa229e0d45ae59b598b59",
            56: "da2ae4d6b36748f2a318f23e7ab1dfdf45acdc9d049bd80e59de82a60895f562",
            57: "2fe741af801cc238602ac0ec6a7b0c3a8a87c7fc7d7f02a3fe03d1c12eac4d8f",
            63: "29af2686fd53374a36b0846694cc342177e428d1647515f078784d69cdb9e488",
            64: "fdeab9acf3710362bd2658cdc9a29e8f9c757fcf9811603a8c447cd1d9151108",
            65: "4bfd2c8b6f1eec7a2afeb48b934ee4b2694182027e6d0fc075074f2fabb31781",
            119: "da18797ed7c3a777f0847f429724a2d8cd5138e6ed2895c3fa1a6d39d18f7ec6",
            120: "f52b23db1fbb6ded89ef42a23ce0c8922c45f25c50b568a93bf1c075420bbb7c",
            128: "471fb943aa23c511f6f72f8d1652d9c880cfa392ad80503120547703e56a2be5",
            1000: "4e4c294b331f7a2099a379bec34b9f9fc03dc46ab465d998f4d683da53487e6d",
        ]
        for (n, digest) in expected.sorted(by: { $0.key < $1.key }) {
            let bytes = (0..<n).map { UInt8($0 % 251) }
            XCTAssertEqual(SHA256.hex(bytes), digest, "\(n) bytes at once")
            for piece in [1, 3, 63, 64, 65] {
                var hasher = SHA256()
                for start in stride(from: 0, to: n, by: piece) { hasher.update(bytes[start..<min(n, start + piece)]) }
                XCTAssertEqual(hasher.finalize().map { String(format: "%02x", $0) }.joined(), digest, "\(n) bytes in pieces of \(piece)")
            }
        }
    }
}

/// `Tests/Fixtures/` holds copies of the shared reference fixtures. Every file each copied `manifest.json` lists must
/// be there with the listed size and sha256, the manifests themselves must be the ones copied, and nothing else may
/// sit beside them, so the copies stay the references.
final class FixtureManifestTests: XCTestCase {
    struct Manifest: Decodable {
        struct Entry: Decodable {
            let path: String
            let bytes: Int
            let sha256: String
        }
        let total_bytes: Int
        let files: [Entry]
    }

    /// The folders (relative to `Tests/Fixtures/`) holding a `MANIFEST.md` and a `manifest.json`.
    static let sets = ["", "archs/", "vocab-lora/"]

    /// sha256 of the manifests as copied from `../shared/fixtures`: a file list edited along with its files fails here.
    static let pinned: [String: String] = [
        "MANIFEST.md": "3511727330cd923925799754db4bb905a94e6f76ce879b514fe97f4135557554",
        "manifest.json": "4934113defd0964d99b9d840953604835fa1527df541ccdcbddce8205b9a4886",
        "archs/MANIFEST.md": "7479c53e27e4e0f3c91085d30feb7586dcc40a5d7e22151975857b2a8d27fafb",
        "archs/manifest.json": "9cc2c787324c4da72c61e765cfa0b631c33dd313a6517e10460c8d3c80a50774",
        "vocab-lora/MANIFEST.md": "64747ee3f2186ea5711c13f9f84f4881b8d56b1e5ac49a68efde7cb14d12e8cc",
        "vocab-lora/manifest.json": "37f6c4e0392a047b168c160cb5b72c533da8f8172b7288863afea794dc2656b9",
    ]

    /// Files of `Tests/Fixtures/` that no manifest lists: the manifests and this copy's README and .gitattributes.
    static let unlisted: Set<String> = Set(pinned.keys).union(["README.md", ".gitattributes"])

    func manifest(_ set: String) throws -> Manifest {
        let path = Fixtures.fixture(set + "manifest.json")
        guard FileManager.default.fileExists(atPath: path) else {
            XCTFail("the fixture manifest \(path) is missing")
            throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: path])
        }
        return try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    func testManifestsAreTheCopiedOnes() throws {
        for (relative, digest) in Self.pinned.sorted(by: { $0.key < $1.key }) {
            let path = Fixtures.fixture(relative)
            XCTAssertTrue(FileManager.default.fileExists(atPath: path), "\(path) is missing")
            XCTAssertEqual(try SHA256.hex(fileAt: path), digest, relative)
        }
    }

    func testEveryListedFileHasItsSizeAndSHA256() throws {
        var checked = 0
        for set in Self.sets {
            let m = try manifest(set)
            XCTAssertFalse(m.files.isEmpty, "\(set)manifest.json lists no files")
            XCTAssertEqual(m.files.reduce(0) { $0 + $1.bytes }, m.total_bytes, "\(set)manifest.json: sizes add up to total_bytes")
            XCTAssertEqual(Set(m.files.map(\.path)).count, m.files.count, "\(set)manifest.json lists a file twice")
            for entry in m.files {
                let path = Fixtures.fixture(set + entry.path)
                guard let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber else {
                    XCTFail("\(set + entry.path) is listed in \(set)manifest.json but \(path) is missing")
                    continue
                }
                XCTAssertEqual(size.intValue, entry.bytes, "\(set + entry.path): size")
                XCTAssertEqual(try SHA256.hex(fileAt: path), entry.sha256, "\(set + entry.path): sha256")
                checked += 1
            }
        }
        XCTAssertEqual(checked, 298 + 248 + 256, "files checked against the three manifests")
    }

    /// The files the tests read are among those the manifests describe.
    func testManifestsListTheFilesTestsRead() throws {
        let top = Set(try manifest("").files.map(\.path))
        for file in ["tokenizer/golden.json", "tokenizer/tokenizer.json", "models/llama-base/model.safetensors",
                     "models/mixtral-tiny/config.json", "forward/llama-base.safetensors", "merges/ties/recipe.yaml",
                     "merges/ties/output/model.safetensors", "moe/moe-hidden/recipe.yaml"] {
            XCTAssertTrue(top.contains(file), "manifest.json does not list \(file)")
        }
        XCTAssertFalse(try manifest("archs/").files.filter { $0.path.hasPrefix("models/") }.isEmpty)
        XCTAssertFalse(try manifest("vocab-lora/").files.filter { $0.path.hasPrefix("models/") }.isEmpty)
    }

    func testNothingUnlistedSitsAmongTheFixtures() throws {
        var listed = Self.unlisted
        for set in Self.sets { listed.formUnion(try manifest(set).files.map { set + $0.path }) }
        let root = Fixtures.fixture("")
        let enumerator = try XCTUnwrap(FileManager.default.enumerator(atPath: root), root)
        var seen = 0
        while let relative = enumerator.nextObject() as? String {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: root + "/" + relative, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            XCTAssertTrue(listed.contains(relative), "\(relative) is in Tests/Fixtures but no manifest lists it")
            seen += 1
        }
        XCTAssertEqual(seen, listed.count, "files under Tests/Fixtures")
    }
}
