import Checkpoints
import Foundation
import Host

extension ModelInspection {
    /// Lines of the chat template shown in the text report.
    static let templateLines = 8

    /// The report for a terminal. Tensors are listed as per-layer patterns unless `allTensors`.
    public func text(allTensors: Bool = false) -> String {
        var s = ""
        func line(_ text: String = "") { s += text + "\n" }

        let kind = format == "gguf" ? "GGUF v\(ggufVersion ?? 0) file" : "safetensors folder (\(files.count) "
            + "file\(files.count == 1 ? "" : "s"))"
        line("Model: \(path)")
        if reference != path { line("  (from \(reference))") }
        line("  \(kind), weights \(formatBytes(fileBytes)) on disk")

        // Architecture.
        let table = architecture.table.map { $0 + (architecture.inferred ? " (inferred from tensor names)" : "") } ?? "none"
        line("Architecture: \(table); architectures[0] \(architecture.className ?? "-"), model_type \(architecture.modelType ?? "-")")

        // Dimensions.
        let d = dimensions
        func v(_ x: Int?) -> String { x.map(String.init) ?? "-" }
        line("Dimensions:")
        line("  hidden \(v(d.hiddenSize)), intermediate \(v(d.intermediateSize)), layers \(v(d.layers)), heads \(v(d.heads)), "
            + "kv heads \(v(d.kvHeads)), head_dim \(v(d.headDim)), vocab \(v(d.vocabSize))")
        if let e = d.experts { line("  experts \(e), top-k \(v(d.expertsPerToken))") }
        var rope = "  rope theta \(d.ropeTheta.flatMap { SVGNumber.readable($0, significant: 8) } ?? "-")"
        rope += ", scaling " + (d.ropeScaling.map { $0.serialized(indent: 0) } ?? "none")
        rope += ", sliding window \(d.slidingWindow.map(String.init) ?? "none")"
        rope += ", tied embeddings \(d.tiedEmbeddings.map { $0 ? "yes" : "no" } ?? "-")"
        if let m = d.maxPositions { rope += ", max positions \(m)" }
        line(rope)
        if let p = configProblem { line("  note: the engine cannot run this config: \(p)") }

        // Parameters and storage.
        line("Parameters: \(ReportText.grouped(parameterCount)) (\(ReportText.shortCount(parameterCount))) in \(tensors.count) tensors, "
            + "\(formatBytes(tensorBytes)) of tensor data")
        line("Storage:")
        let storageRows = storage.map { [$0.storage, String($0.tensors), ReportText.grouped($0.parameters), formatBytes($0.bytes)] }
        s += ReportText.table(header: ["type", "tensors", "parameters", "bytes"], rows: storageRows, rightAligned: [1, 2, 3], indent: 2)

        // Tensors.
        if allTensors {
            line("Tensors (\(tensors.count)):")
            let rows = tensors.map { t in
                [t.name, ReportText.shapeText(t.shape), t.storage, formatBytes(t.bytes)] + (t.ggufName.map { [$0] } ?? [])
            }
            let header = ["name", "shape", "storage", "bytes"] + (format == "gguf" ? ["GGUF name"] : [])
            s += ReportText.table(header: header, rows: rows, rightAligned: [3], indent: 2)
        } else {
            line("Tensors (\(tensors.count), as \(patterns.count) patterns; --tensors lists each):")
            let rows = patterns.map { p in [p.pattern, ReportText.shapeText(p.shape), p.storage, "×\(p.count)", formatBytes(p.bytes)] }
            s += ReportText.table(header: ["name", "shape", "storage", "count", "bytes"], rows: rows, rightAligned: [3, 4], indent: 2)
        }

        // Tokenizer.
        switch tokenizer {
        case let .success(t):
            var head = "Tokenizer: \(t.kind), \(t.vocabularySize) tokens, from \(t.source)"
            if let m = t.model { head += " (model \(m))" }
            line(head)
            func tok(_ st: SpecialToken?) -> String {
                guard let st else { return "none" }
                return "\(st.id) \(st.text.map(ReportText.quoted) ?? "(not in the vocabulary)")"
            }
            line("  BOS \(tok(t.bos)), EOS \(tok(t.eos)), PAD \(tok(t.pad))")
            line("  adds BOS: \(t.addsBOS ? "yes" : "no"), adds EOS: \(t.addsEOS ? "yes" : "no"), control tokens: \(t.controlTokens)")
            var pre = "  pre-tokenizer: \(t.preTokenizer ?? "none")"
            if !t.splitRules.isEmpty { pre += " (split rules: \(t.splitRules.joined(separator: ", ")))" }
            line(pre)
        case let .failure(problem):
            line("Tokenizer: not loaded: \(problem.reason)")
        }

        // Chat template.
        if let template = chatTemplate {
            let lines = template.split(separator: "\n", omittingEmptySubsequences: false)
            line("Chat template (\(lines.count) line\(lines.count == 1 ? "" : "s"), from \(chatTemplateSource ?? "?")):")
            for l in lines.prefix(Self.templateLines) { line("  | " + ReportText.printable(String(l), limit: 160)) }
            if lines.count > Self.templateLines { line("  | … \(lines.count - Self.templateLines) more lines (--json prints the whole "
                + "template)") }
        } else {
            line("Chat template: none")
        }

        // GGUF metadata.
        if !metadata.isEmpty {
            line("GGUF metadata (\(metadata.count) keys):")
            for m in metadata {
                var value: String
                if let n = m.length {
                    let items = m.value.arrayValue ?? []
                    value = "\(m.type), \(n) item\(n == 1 ? "" : "s")"
                    if !items.isEmpty {
                        value += ": [" + items.map { ReportText.printable($0.serialized(indent: 0), limit: 40) }.joined(separator: ", ")
                            + (m.truncated ? ", …]" : "]")
                    }
                } else {
                    let shown = m.value.stringValue.map { ReportText.quoted($0) } ?? m.value.serialized(indent: 0)
                    value = ReportText.printable(shown, limit: 120) + (m.truncated ? " …" : "") + "  (\(m.type))"
                }
                line("  \(m.key) = \(value)")
            }
        }
        for n in notes { line("note: \(n)") }
        return s
    }

    /// The report as one JSON object (schema in docs/inspect.md). `tensors` lists every tensor only when
    /// `allTensors`; `tensor_patterns` is always present.
    public func json(allTensors: Bool = false) -> JSONValue {
        let d = dimensions
        var o = JSONObject()
        o["reference"] = .string(reference)
        o["path"] = .string(path)
        o["format"] = .string(format)
        if let v = ggufVersion { o["gguf_version"] = .int(Int64(v)) }
        o["files"] = .array(files.map { ReportJSON.object([("path", .string($0.path)), ("bytes", .int(Int64($0.bytes)))]) })
        o["file_bytes"] = .int(Int64(fileBytes))
        o["config_path"] = .string(configPath)
        o["architecture"] = ReportJSON.object([
            ("table", ReportJSON.string(architecture.table)), ("inferred", .bool(architecture.inferred)),
            ("architectures", ReportJSON.string(architecture.className)), ("model_type", ReportJSON.string(architecture.modelType)),
        ])
        o["dimensions"] = ReportJSON.object([
            ("hidden_size", ReportJSON.int(d.hiddenSize)), ("intermediate_size", ReportJSON.int(d.intermediateSize)),
            ("num_layers", ReportJSON.int(d.layers)), ("num_attention_heads", ReportJSON.int(d.heads)),
            ("num_key_value_heads", ReportJSON.int(d.kvHeads)), ("head_dim", ReportJSON.int(d.headDim)),
            ("vocab_size", ReportJSON.int(d.vocabSize)), ("num_experts", ReportJSON.int(d.experts)),
            ("experts_per_token", ReportJSON.int(d.expertsPerToken)), ("rope_theta", ReportJSON.number(d.ropeTheta)),
            ("rope_scaling", d.ropeScaling ?? .null), ("sliding_window", ReportJSON.int(d.slidingWindow)),
            ("tie_word_embeddings", d.tiedEmbeddings.map { .bool($0) } ?? .null),
            ("max_position_embeddings", ReportJSON.int(d.maxPositions)), ("rms_norm_eps", ReportJSON.number(d.rmsNormEps)),
        ])
        o["config_problem"] = ReportJSON.string(configProblem)
        o["parameters"] = .int(Int64(parameterCount))
        o["tensor_count"] = .int(Int64(tensors.count))
        o["tensor_bytes"] = .int(Int64(tensorBytes))
        o["storage"] = .array(storage.map { s in
            ReportJSON.object([("type", .string(s.storage)), ("tensors", .int(Int64(s.tensors))),
                               ("parameters", .int(Int64(s.parameters))), ("bytes", .int(Int64(s.bytes)))])
        })
        o["tensor_patterns"] = .array(patterns.map { p in
            ReportJSON.object([("pattern", .string(p.pattern)),
                               ("indices", .array(p.indices.map { .array($0.map { .int(Int64($0)) }) })),
                               ("count", .int(Int64(p.count))), ("shape", ReportText.shapeJSON(p.shape)), ("storage", .string(p.storage)),
                               ("bytes", .int(Int64(p.bytes)))])
        })
        if allTensors {
            o["tensors"] = .array(tensors.map { t in
                var pairs: [(String, JSONValue)] = [("name", .string(t.name)), ("shape", ReportText.shapeJSON(t.shape)),
                                                    ("storage", .string(t.storage)), ("bytes", .int(Int64(t.bytes)))]
                if let g = t.ggufName { pairs.append(("gguf_name", .string(g))) }
                return ReportJSON.object(pairs)
            })
        }
        switch tokenizer {
        case let .success(t):
            func special(_ st: SpecialToken?) -> JSONValue {
                guard let st else { return .null }
                return ReportJSON.object([("id", .int(Int64(st.id))), ("text", ReportJSON.string(st.text))])
            }
            o["tokenizer"] = ReportJSON.object([
                ("kind", .string(t.kind)), ("source", .string(t.source)), ("model", ReportJSON.string(t.model)),
                ("vocab_size", .int(Int64(t.vocabularySize))), ("bos", special(t.bos)), ("eos", special(t.eos)),
                ("pad", special(t.pad)), ("add_bos", .bool(t.addsBOS)), ("add_eos", .bool(t.addsEOS)),
                ("pre_tokenizer", ReportJSON.string(t.preTokenizer)), ("split_rules", .array(t.splitRules.map { .string($0) })),
                ("control_tokens", .int(Int64(t.controlTokens))),
            ])
        case let .failure(problem):
            o["tokenizer"] = ReportJSON.object([("error", .string(problem.reason))])
        }
        o["chat_template"] = ReportJSON.string(chatTemplate)
        o["chat_template_source"] = ReportJSON.string(chatTemplateSource)
        if format == "gguf" {
            o["gguf_metadata"] = .array(metadata.map { m in
                var pairs: [(String, JSONValue)] = [("key", .string(m.key)), ("type", .string(m.type))]
                if let n = m.length {
                    pairs += [("length", .int(Int64(n))), ("first", m.value)]
                } else {
                    pairs.append(("value", m.value))
                }
                pairs.append(("truncated", .bool(m.truncated)))
                return ReportJSON.object(pairs)
            })
        }
        o["notes"] = .array(notes.map { .string($0) })
        return .object(o)
    }
}

// MARK: - Text helpers shared by the reports

/// Text helpers shared by the inspect and compare reports.
enum ReportText {

    static func shapeText(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }

    static func shapeJSON(_ shape: [Int]) -> JSONValue { .array(shape.map { .int(Int64($0)) }) }

    /// `134,515,008`.
    static func grouped(_ n: Int) -> String {
        let digits = String(abs(n))
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0, (digits.count - i) % 3 == 0 { out += "," }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + out
    }

    /// `134.5M`, `1.24B`, `96.3K`.
    static func shortCount(_ n: Int) -> String {
        let x = Double(n)
        if x >= 1e9 { return String(format: "%.2fB", x / 1e9) }
        if x >= 1e6 { return String(format: "%.1fM", x / 1e6) }
        if x >= 1e3 { return String(format: "%.1fK", x / 1e3) }
        return String(n)
    }

    /// Text with control characters shown as escapes (a hostile metadata string cannot move the cursor or
    /// clear the terminal), cut to `limit` characters.
    static func printable(_ s: String, limit: Int) -> String {
        var out = ""
        var count = 0
        for u in s.unicodeScalars {
            if count >= limit { out += "…"; break }
            switch u.value {
            case 0x0A: out += "\\n"
            case 0x09: out += "\\t"
            case 0x0D: out += "\\r"
            case 0..<0x20, 0x7F, 0x80..<0xA0: out += String(format: "\\u{%X}", u.value)
            default: out.unicodeScalars.append(u)
            }
            count += 1
        }
        return out
    }

    /// `"text"` with escapes for control characters.
    static func quoted(_ s: String) -> String { "\"" + printable(s, limit: 80) + "\"" }

    /// A plain-text table with a header row and columns padded to their widest cell.
    static func table(header: [String], rows: [[String]], rightAligned: Set<Int> = [], indent: Int = 0) -> String {
        let columns = max(header.count, rows.map(\.count).max() ?? 0)
        var widths = [Int](repeating: 0, count: columns)
        for r in [header] + rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        let pad = String(repeating: " ", count: indent)
        func format(_ r: [String]) -> String {
            var cells: [String] = []
            for i in 0..<columns {
                let c = i < r.count ? r[i] : ""
                let fill = String(repeating: " ", count: widths[i] - c.count)
                cells.append(rightAligned.contains(i) ? fill + c : c + fill)
            }
            return pad + cells.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) + "\n"
        }
        return ([header] + rows).map(format).joined()
    }
}
