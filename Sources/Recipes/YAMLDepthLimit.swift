import Yams

/// A bound on how deeply a recipe may nest, checked on the text before libyaml sees it, and on how many nodes it
/// may expand to once aliases are followed (a few `&a [*b, *b, …]` lines otherwise expand exponentially).
///
/// libyaml's parser and Yams' composer recurse once per nesting level, so a small hostile file (`[[[[…` a few
/// thousand times, or a few thousand ever-deeper block mappings) overflows the stack and kills the process. A real
/// recipe nests about six levels; this scan refuses anything deeper than `maxDepth` with the line and column where
/// the limit was crossed, before any parser recurses.
///
/// The scan over-approximates YAML's nesting without parsing it: a flow collection (`[`, `{` outside quotes and
/// comments) opens a level until its bracket closes; in block context each strictly greater indentation opens a
/// level, and so does each `- ` sequence indicator or `key:` that starts a nested node on the same line. Block
/// scalars (`|`, `>`) are skipped. It can only count a level too many, never too few.
public enum YAMLDepthLimit {
    /// Deepest nesting accepted.
    public static let maxDepth = 64

    /// Where nesting first exceeds `limit` (1-based line and column, in Unicode scalars as libyaml counts), or nil.
    public static func firstViolation(in text: String, limit: Int = maxDepth) -> (line: Int, column: Int, depth: Int)? {
        var open: [(indent: Int, depth: Int)] = []  // block lines that may own the following, more indented ones
        var flowDepth = 0
        var flowBase = 0                  // block depth where the open flow collection started
        var blockScalarIndent: Int? = nil // indentation of the line that started a `|`/`>` scalar
        var quote: Unicode.Scalar? = nil  // an open quoted scalar (may span lines)
        var lineNumber = 0

        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let scalars = Array(line.unicodeScalars)
            var i = 0
            while i < scalars.count, scalars[i] == " " { i += 1 }
            let indent = i
            let blank = i >= scalars.count || scalars[i] == "#" || scalars[i] == "\r"

            if let scalarIndent = blockScalarIndent {
                if blank || indent > scalarIndent { continue }
                blockScalarIndent = nil
            }
            if blank && quote == nil { continue }

            let startsInBlock = flowDepth == 0 && quote == nil
            var depth: Int
            if startsInBlock {
                while let last = open.last, last.indent >= indent { open.removeLast() }
                depth = open.last?.depth ?? 0
            } else {
                depth = flowBase
            }
            var atNodeStart = quote == nil
            while i < scalars.count {
                let c = scalars[i]
                let next: Unicode.Scalar? = i + 1 < scalars.count ? scalars[i + 1] : nil
                let spaceFollows = next == nil || next == " " || next == "\t" || next == "\r"
                if let q = quote {
                    if c == q {
                        if q == "'" && next == "'" { i += 2; continue }
                        quote = nil
                        atNodeStart = false
                    } else if c == "\\" && q == "\"" {
                        i += 1
                    }
                    i += 1
                    continue
                }
                if c == " " || c == "\t" || c == "\r" { i += 1; continue }
                switch c {
                case "\"" where atNodeStart, "'" where atNodeStart:
                    quote = c
                case "#" where i == 0 || scalars[i - 1] == " " || scalars[i - 1] == "\t":
                    i = scalars.count
                    continue
                case "[" where atNodeStart || flowDepth > 0, "{" where atNodeStart || flowDepth > 0:
                    if flowDepth == 0 { flowBase = depth }
                    flowDepth += 1
                    if flowBase + flowDepth > limit { return (lineNumber, i + 1, flowBase + flowDepth) }
                    atNodeStart = true
                case "]" where flowDepth > 0, "}" where flowDepth > 0:
                    flowDepth -= 1
                    atNodeStart = false
                case "," where flowDepth > 0:
                    atNodeStart = true
                case "-" where flowDepth == 0 && atNodeStart && spaceFollows, "?" where flowDepth == 0 && atNodeStart && spaceFollows:
                    depth += 1
                    if depth > limit { return (lineNumber, i + 1, depth) }
                case ":" where spaceFollows || flowDepth > 0:
                    if flowDepth == 0 {
                        depth += 1
                        if depth > limit { return (lineNumber, i + 1, depth) }
                    }
                    atNodeStart = true
                default:
                    atNodeStart = false
                }
                i += 1
            }
            if startsInBlock { open.append((indent, depth)) }
            if flowDepth == 0, quote == nil, isBlockScalarHeader(scalars) {
                blockScalarIndent = indent
            }
        }
        return nil
    }

    /// Whether a line ends in a block scalar header with indicators (`|-`, `>+`, `|2`).
    private static func isBlockScalarHeader(_ scalars: [Unicode.Scalar]) -> Bool {
        var j = scalars.count - 1
        while j >= 0, scalars[j] == " " || scalars[j] == "\r" { j -= 1 }
        var sawIndicator = false
        while j >= 0 {
            let c = scalars[j]
            if c == "-" || c == "+" || ("0"..."9").contains(c) { j -= 1; continue }
            if c == "|" || c == ">" { sawIndicator = true }
            break
        }
        return sawIndicator && (j == 0 || scalars[j - 1] == " ")
    }

    /// Most nodes a recipe may hold once YAML aliases are expanded.
    public static let maxNodes = 100_000

    /// Whether the composed document holds more than `limit` nodes counting every alias expansion; walks
    /// iteratively and stops as soon as the limit is passed.
    public static func exceedsNodeLimit(_ root: Node, limit: Int = maxNodes) -> Bool {
        var stack = [root]
        var count = 0
        while let node = stack.popLast() {
            count += 1
            if count > limit { return true }
            switch node {
            case .scalar: break
            case let .mapping(m): for (k, v) in m { stack.append(k); stack.append(v) }
            case let .sequence(s): stack.append(contentsOf: s)
            }
        }
        return false
    }
}
