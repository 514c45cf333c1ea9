import Foundation

// A small, self-contained SVG writer shared by Crucible's charts (the `compare` heatmap, score-report bar,
// line and distribution charts). Documents it writes are well-formed XML with no external fonts, images,
// stylesheets or scripts, so they open the same way in a browser, an image viewer or a converter.
//
// The pieces:
// - `SVGElement` / `SVGNode`: an element tree with escaped attributes and text, `<title>` tooltips;
// - `SVGDocument`: the root `<svg>` with a viewBox, a title and a description;
// - `SVGNumber`: number formatting that never writes NaN or infinity;
// - `LinearScale`, `BandScale`, `NiceTicks`: data → pixel mappings and readable tick values;
// - `SVGColor`, `ColorScale`: colours and a perceptually ordered, colour-blind-safe sequential scale;
// - `SVGAxis`, `SVGLegend`: axes with ticks and labels, a colour-bar legend.

// MARK: - Numbers

/// Number formatting for SVG output. Non-finite values have no spelling here: every formatter returns nil
/// for NaN and ±infinity, and elements built from such numbers are left out of the document (see `SVGElement`).
public enum SVGNumber {
    /// `x` with at most `fractionDigits` decimals, trailing zeros and a trailing point removed, never in
    /// exponent notation and never `-0` (`1.5`, `120`, `0.003`); nil when `x` is NaN or infinite.
    public static func format(_ x: Double, fractionDigits: Int = 3) -> String? {
        guard x.isFinite else { return nil }
        let digits = max(0, min(fractionDigits, 17))
        var s = String(format: "%.\(digits)f", x)
        if s.contains(".") {
            while s.hasSuffix("0") { s.removeLast() }
            if s.hasSuffix(".") { s.removeLast() }
        }
        if s == "-0" { s = "0" }
        return s
    }

    /// `x` to `significant` significant digits for people to read (`0.99871`, `1.2e-05` for tiny values);
    /// nil when `x` is NaN or infinite.
    public static func readable(_ x: Double, significant: Int = 5) -> String? {
        guard x.isFinite else { return nil }
        if x == 0 { return "0" }
        let digits = max(1, min(significant, 17))
        let magnitude = abs(x)
        if magnitude >= 1e-4 && magnitude < 1e15 {
            // Enough decimals for `digits` significant digits, then trailing zeros trimmed.
            let decimals = max(0, digits - 1 - Int(floor(log10(magnitude))))
            return format(x, fractionDigits: decimals)
        }
        return String(format: "%.\(digits - 1)e", x)
    }
}

// MARK: - Escaping

/// XML escaping for text and attribute values.
public enum XMLEscape {
    /// Whether XML 1.0 allows the scalar in a document at all (tab, LF, CR, and everything from U+0020
    /// except U+FFFE and U+FFFF; Swift strings hold no surrogates).
    public static func isAllowed(_ u: Unicode.Scalar) -> Bool {
        switch u.value {
        case 0x09, 0x0A, 0x0D: return true
        case 0x00..<0x20: return false
        case 0xFFFE, 0xFFFF: return false
        default: return true
        }
    }

    /// Text content: `&`, `<` and `>` become entities, CR becomes `&#13;` (so it survives line-end
    /// normalisation), and characters XML cannot hold (other C0 controls, U+FFFE, U+FFFF) become U+FFFD.
    public static func text(_ s: String) -> String {
        escape(s, inAttribute: false)
    }

    /// An attribute value for double quotes: as `text`, plus `"` and `'` as entities and tab / LF / CR as
    /// character references (a parser would otherwise turn them into spaces).
    public static func attribute(_ s: String) -> String {
        escape(s, inAttribute: true)
    }

    private static func escape(_ s: String, inAttribute: Bool) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for u in s.unicodeScalars {
            switch u {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"" where inAttribute: out += "&quot;"
            case "'" where inAttribute: out += "&apos;"
            case "\r": out += "&#13;"
            case "\n" where inAttribute: out += "&#10;"
            case "\t" where inAttribute: out += "&#9;"
            default:
                if isAllowed(u) { out.unicodeScalars.append(u) } else { out += "\u{FFFD}" }
            }
        }
        return out
    }

    /// Whether `name` is usable as an element or attribute name as written by this writer: ASCII letters,
    /// digits, `-`, `_`, `.` and `:` (for `xlink:href`-style names), starting with a letter or `_`.
    public static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first.isASCII,
              first.properties.isAlphabetic || first == "_" else { return false }
        return name.unicodeScalars.allSatisfy { u in
            u.isASCII && (u.properties.isAlphabetic || ("0"..."9").contains(u) || u == "-" || u == "_" || u == "." || u == ":")
        }
    }
}

// MARK: - Element tree

/// An attribute value: text, or a number written with `SVGNumber.format`.
public enum SVGValue: Sendable, Equatable, ExpressibleByStringLiteral, ExpressibleByFloatLiteral, ExpressibleByIntegerLiteral {
    case text(String)
    /// A number and the most decimals to write it with.
    case number(Double, fractionDigits: Int)

    public init(stringLiteral value: String) { self = .text(value) }
    public init(floatLiteral value: Double) { self = .number(value, fractionDigits: 3) }
    public init(integerLiteral value: Int) { self = .number(Double(value), fractionDigits: 0) }

    /// A number with up to three decimals (enough for pixel coordinates).
    public static func num(_ x: Double) -> SVGValue { .number(x, fractionDigits: 3) }
    /// A number with up to three decimals.
    public static func num(_ x: Int) -> SVGValue { .number(Double(x), fractionDigits: 0) }

    /// The value as written, or nil for a non-finite number.
    public var rendered: String? {
        switch self {
        case let .text(s): return s
        case let .number(x, digits): return SVGNumber.format(x, fractionDigits: digits)
        }
    }
}

/// A child of an element: another element or text.
public indirect enum SVGNode: Sendable, Equatable {
    case element(SVGElement)
    case text(String)
}

/// One XML element with ordered attributes and children.
///
/// Build with the initialiser and the chaining helpers (`attr`, `child`, `text`, `tooltip`) or mutate in place
/// (`set`, `append`). Rendering escapes every attribute value and text node (`XMLEscape`).
///
/// *Non-finite numbers.* An element with an attribute given as a NaN or infinite number is not drawn at all: it
/// renders as an XML comment saying which attribute was not finite, and its children are dropped with it. A
/// shape with an unknown coordinate is missing data, not a shape at 0. Callers that want a visible placeholder
/// (a grey "n/a" cell) check `isFinite` themselves.
public struct SVGElement: Sendable, Equatable {
    /// The element name (`rect`, `g`, `text`…).
    public let name: String
    /// Attributes in the order they are written.
    public private(set) var attributes: [(name: String, value: SVGValue)]
    public private(set) var children: [SVGNode]

    public init(_ name: String, _ attributes: [(String, SVGValue)] = [], children: [SVGElement] = []) {
        precondition(XMLEscape.isValidName(name), "invalid SVG element name '\(name)'")
        self.name = name
        self.attributes = []
        self.children = children.map { .element($0) }
        for (n, v) in attributes { set(n, v) }
    }

    public static func == (a: SVGElement, b: SVGElement) -> Bool {
        a.name == b.name && a.children == b.children && a.attributes.count == b.attributes.count
            && zip(a.attributes, b.attributes).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }

    /// The value of attribute `name`, if set.
    public func attribute(_ name: String) -> SVGValue? {
        attributes.first { $0.name == name }?.value
    }

    /// Sets (or replaces) an attribute.
    public mutating func set(_ name: String, _ value: SVGValue) {
        precondition(XMLEscape.isValidName(name), "invalid SVG attribute name '\(name)'")
        if let i = attributes.firstIndex(where: { $0.name == name }) {
            attributes[i].value = value
        } else {
            attributes.append((name, value))
        }
    }

    /// Appends a child element.
    public mutating func append(_ child: SVGElement) { children.append(.element(child)) }
    /// Appends child elements.
    public mutating func append(contentsOf elements: [SVGElement]) { children += elements.map { .element($0) } }
    /// Appends a text node.
    public mutating func append(text: String) { children.append(.text(text)) }

    /// A copy with attribute `name` set.
    public func attr(_ name: String, _ value: SVGValue) -> SVGElement {
        var copy = self
        copy.set(name, value)
        return copy
    }

    /// A copy with `element` appended.
    public func child(_ element: SVGElement) -> SVGElement {
        var copy = self
        copy.append(element)
        return copy
    }

    /// A copy with a text node appended.
    public func text(_ content: String) -> SVGElement {
        var copy = self
        copy.append(text: content)
        return copy
    }

    /// A copy whose first child is `<title>text</title>`: viewers show it as a tooltip when the pointer rests
    /// on the element, and screen readers read it. An existing leading title is replaced.
    public func tooltip(_ text: String) -> SVGElement {
        var copy = self
        if case let .element(first)? = copy.children.first, first.name == "title" { copy.children.removeFirst() }
        copy.children.insert(.element(SVGElement("title").text(text)), at: 0)
        return copy
    }

    /// The first attribute whose value is a non-finite number, if any.
    public var nonFiniteAttribute: String? {
        attributes.first { $0.value.rendered == nil }?.name
    }

    /// The element as XML, children indented by `indent` spaces per level (0: on one line). Elements that hold
    /// text are written on one line so that the text keeps its exact spacing.
    public func render(indent: Int = 1, level: Int = 0) -> String {
        var out = ""
        write(into: &out, indent: indent, level: level)
        return out
    }

    func write(into out: inout String, indent: Int, level: Int) {
        let pad = indent > 0 ? String(repeating: " ", count: indent * level) : ""
        let newline = indent > 0 ? "\n" : ""
        if let bad = nonFiniteAttribute {
            // A comment may not contain "--" (names may hold "-", so runs are broken up).
            let what = "\(name) left out: attribute \(bad) is not a finite number".replacingOccurrences(of: "--", with: "- -")
            out += pad + "<!-- " + what + " -->" + newline
            return
        }
        out += pad + "<" + name
        for (n, v) in attributes {
            out += " " + n + "=\"" + XMLEscape.attribute(v.rendered ?? "") + "\""
        }
        if children.isEmpty {
            out += "/>" + newline
            return
        }
        out += ">"
        let hasText = children.contains { if case .text = $0 { return true }; return false }
        if hasText {
            // Mixed or text content: one line, no added whitespace.
            for c in children {
                switch c {
                case let .text(t): out += XMLEscape.text(t)
                case let .element(e): e.write(into: &out, indent: 0, level: 0)
                }
            }
        } else {
            out += newline
            for case let .element(e) in children { e.write(into: &out, indent: indent, level: level + 1) }
            out += pad
        }
        out += "</" + name + ">" + newline
    }
}

extension SVGElement {
    /// `<g>` grouping `children`, with optional attributes (`transform`, `font-size`…).
    public static func group(_ attributes: [(String, SVGValue)] = [], _ children: [SVGElement]) -> SVGElement {
        SVGElement("g", attributes, children: children)
    }

    /// `<rect>`.
    public static func rect(x: Double, y: Double, width: Double, height: Double, fill: String,
                            stroke: String? = nil, strokeWidth: Double = 1) -> SVGElement {
        var e = SVGElement("rect", [("x", .num(x)), ("y", .num(y)), ("width", .num(width)), ("height", .num(height)),
                                    ("fill", .text(fill))])
        if let stroke {
            e.set("stroke", .text(stroke))
            e.set("stroke-width", .num(strokeWidth))
        }
        return e
    }

    /// `<line>` from (x1, y1) to (x2, y2).
    public static func line(x1: Double, y1: Double, x2: Double, y2: Double, stroke: String = "#000000",
                            strokeWidth: Double = 1) -> SVGElement {
        SVGElement("line", [("x1", .num(x1)), ("y1", .num(y1)), ("x2", .num(x2)), ("y2", .num(y2)),
                            ("stroke", .text(stroke)), ("stroke-width", .num(strokeWidth))])
    }

    /// `<circle>`.
    public static func circle(cx: Double, cy: Double, r: Double, fill: String) -> SVGElement {
        SVGElement("circle", [("cx", .num(cx)), ("cy", .num(cy)), ("r", .num(r)), ("fill", .text(fill))])
    }

    /// Where a text's anchor point lies along it.
    public enum TextAnchor: String, Sendable { case start, middle, end }

    /// `<text>` at (x, y) (the baseline, or the vertical middle with `middle: true`), optionally rotated by
    /// `rotate` degrees about its anchor point.
    public static func label(_ content: String, x: Double, y: Double, anchor: TextAnchor = .start, size: Double = 12,
                             fill: String = "#000000", bold: Bool = false, middle: Bool = false,
                             rotate: Double? = nil) -> SVGElement {
        var e = SVGElement("text", [("x", .num(x)), ("y", .num(y)), ("font-size", .num(size)), ("fill", .text(fill))])
        if anchor != .start { e.set("text-anchor", .text(anchor.rawValue)) }
        if middle { e.set("dominant-baseline", "central") }
        if bold { e.set("font-weight", "bold") }
        if let rotate, let r = SVGNumber.format(rotate), let xs = SVGNumber.format(x), let ys = SVGNumber.format(y) {
            e.set("transform", .text("rotate(\(r) \(xs) \(ys))"))
        }
        return e.text(content)
    }

    /// A `<path>` through `points`, broken wherever a point is not finite (a gap in the line rather than a
    /// jump to 0); nil when fewer than one finite point remains.
    public static func polyline(_ points: [(x: Double, y: Double)], stroke: String, strokeWidth: Double = 1.5) -> SVGElement? {
        var d = ""
        var penDown = false
        for p in points {
            guard let x = SVGNumber.format(p.x), let y = SVGNumber.format(p.y) else {
                penDown = false
                continue
            }
            d += (d.isEmpty ? "" : " ") + (penDown ? "L" : "M") + x + " " + y
            penDown = true
        }
        guard !d.isEmpty else { return nil }
        return SVGElement("path", [("d", .text(d)), ("fill", "none"), ("stroke", .text(stroke)),
                                   ("stroke-width", .num(strokeWidth)), ("stroke-linejoin", "round")])
    }
}

// MARK: - Document

/// A complete SVG document: `<svg>` with `xmlns`, `width`, `height` and a matching `viewBox`, a `<title>` and
/// an optional `<desc>`, then the content. Text uses generic system font families; nothing is fetched.
public struct SVGDocument: Sendable {
    public var width: Double
    public var height: Double
    /// The document title (shown by browsers as the tab name).
    public var title: String
    /// A longer description, for screen readers and for anyone reading the file.
    public var summary: String?
    public var content: [SVGElement] = []
    /// Default font size of text without its own.
    public var fontSize: Double = 12

    public init(width: Double, height: Double, title: String, summary: String? = nil) {
        self.width = width
        self.height = height
        self.title = title
        self.summary = summary
    }

    public mutating func append(_ element: SVGElement) { content.append(element) }
    public mutating func append(contentsOf elements: [SVGElement]) { content += elements }

    /// The document as UTF-8 XML text with an XML declaration.
    public func render() -> String {
        let w = SVGNumber.format(width) ?? "0", h = SVGNumber.format(height) ?? "0"
        var root = SVGElement("svg", [
            ("xmlns", "http://www.w3.org/2000/svg"), ("version", "1.1"),
            ("width", .text(w)), ("height", .text(h)), ("viewBox", .text("0 0 \(w) \(h)")),
            ("font-family", "DejaVu Sans, Helvetica, Arial, sans-serif"), ("font-size", .num(fontSize)),
        ])
        root.append(SVGElement("title").text(title))
        if let summary { root.append(SVGElement("desc").text(summary)) }
        root.append(SVGElement.rect(x: 0, y: 0, width: width, height: height, fill: "#ffffff"))
        root.append(contentsOf: content)
        return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + root.render()
    }
}

// MARK: - Scales and ticks

/// "Nice" tick values: multiples of 1, 2 or 5 × 10ⁿ covering a range, as people write axis labels.
public enum NiceTicks {
    /// A step of 1, 2 or 5 × 10ⁿ giving about `count` intervals over `span` (> 0).
    public static func step(span: Double, count: Int) -> Double {
        guard span.isFinite, span > 0 else { return 1 }
        let raw = span / Double(max(1, count))
        let power = pow(10, floor(log10(raw)))
        let fraction = raw / power
        let nice: Double = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10
        return nice * power
    }

    /// The multiples of a nice step that lie within [lo, hi] (about `count` of them, at least the ends' region).
    /// Empty when either end is not finite. A zero-width range gives that single value.
    public static func values(from lo: Double, to hi: Double, count: Int = 5) -> [Double] {
        guard lo.isFinite, hi.isFinite else { return [] }
        let (a, b) = (min(lo, hi), max(lo, hi))
        if a == b { return [a] }
        let s = step(span: b - a, count: count)
        let first = ceil(a / s - 1e-9), last = floor(b / s + 1e-9)
        guard last >= first, last - first < 1000 else { return [] }
        return stride(from: first, through: last, by: 1).map { k in
            let v = k * s
            return abs(v) < s * 1e-9 ? 0 : v
        }
    }

    /// [lo, hi] widened outward to multiples of the nice step (so the axis starts and ends on a tick).
    public static func extended(_ lo: Double, _ hi: Double, count: Int = 5) -> (lo: Double, hi: Double) {
        guard lo.isFinite, hi.isFinite else { return (lo, hi) }
        let (a, b) = (min(lo, hi), max(lo, hi))
        if a == b {
            let pad = a == 0 ? 1 : abs(a) * 0.1
            return (a - pad, b + pad)
        }
        let s = step(span: b - a, count: count)
        return (floor(a / s + 1e-9) * s, ceil(b / s - 1e-9) * s)
    }

    /// Decimals needed to tell apart ticks `step` apart (0 for 1, 2 for 0.05…).
    public static func fractionDigits(step: Double) -> Int {
        guard step.isFinite, step > 0 else { return 0 }
        return max(0, min(12, -Int(floor(log10(step) + 1e-9))))
    }

    /// A tick label for a value on a grid of `step`.
    public static func label(_ value: Double, step: Double) -> String {
        SVGNumber.format(value, fractionDigits: fractionDigits(step: step)) ?? ""
    }
}

/// A linear map from a data interval (`domain`) to a pixel interval (`range`); the range may run backwards
/// (y axes grow upward on screen).
public struct LinearScale: Sendable, Equatable {
    public var domain: (lo: Double, hi: Double)
    public var range: (lo: Double, hi: Double)

    public static func == (a: LinearScale, b: LinearScale) -> Bool {
        a.domain == b.domain && a.range == b.range
    }

    /// A scale over `domain`; a zero-width domain is widened so that values still map to the range's middle.
    public init(domain: (Double, Double), range: (Double, Double)) {
        var d = domain
        if d.0 == d.1 { d = (d.0 - 0.5, d.1 + 0.5) }
        self.domain = (d.0, d.1)
        self.range = (range.0, range.1)
    }

    /// A scale over the finite `values`, widened to nice tick boundaries (`NiceTicks.extended`); nil when no
    /// value is finite.
    public init?(niceOver values: [Double], range: (Double, Double), tickCount: Int = 5) {
        let finite = values.filter(\.isFinite)
        guard let lo = finite.min(), let hi = finite.max() else { return nil }
        let e = NiceTicks.extended(lo, hi, count: tickCount)
        self.init(domain: (e.lo, e.hi), range: range)
    }

    /// The pixel position of `x` (not clamped; NaN in, NaN out).
    public func callAsFunction(_ x: Double) -> Double {
        range.lo + (x - domain.lo) / (domain.hi - domain.lo) * (range.hi - range.lo)
    }

    /// `x`'s position in the domain as a fraction in [0, 1] (clamped; NaN stays NaN).
    public func fraction(_ x: Double) -> Double {
        let f = (x - domain.lo) / (domain.hi - domain.lo)
        return f.isNaN ? f : min(1, max(0, f))
    }

    /// Nice tick values inside the domain.
    public func ticks(_ count: Int = 5) -> [Double] { NiceTicks.values(from: domain.lo, to: domain.hi, count: count) }

    /// The spacing of `ticks(count)`.
    public func tickStep(_ count: Int = 5) -> Double {
        NiceTicks.step(span: abs(domain.hi - domain.lo), count: count)
    }
}

/// Equal bands for categories (bars, heatmap rows and columns) across a pixel interval.
public struct BandScale: Sendable, Equatable {
    public let count: Int
    public let start: Double
    public let end: Double
    /// Fraction of each band left empty, half on each side (0 for touching heatmap cells).
    public let padding: Double

    public init(count: Int, range: (Double, Double), padding: Double = 0) {
        self.count = max(0, count)
        self.start = range.0
        self.end = range.1
        self.padding = min(0.9, max(0, padding))
    }

    /// Width of one band including its padding.
    public var step: Double { count == 0 ? 0 : (end - start) / Double(count) }
    /// Drawn width of one band.
    public var bandwidth: Double { step * (1 - padding) }
    /// Where band `i`'s drawn part starts.
    public func position(_ i: Int) -> Double { start + step * Double(i) + step * padding / 2 }
    /// The centre of band `i`.
    public func center(_ i: Int) -> Double { start + step * (Double(i) + 0.5) }
}

// MARK: - Colour

/// An sRGB colour with components in [0, 1].
public struct SVGColor: Sendable, Equatable {
    public var red: Double, green: Double, blue: Double

    public init(red: Double, green: Double, blue: Double) {
        func clamp(_ v: Double) -> Double { v.isNaN ? 0 : min(1, max(0, v)) }
        self.red = clamp(red); self.green = clamp(green); self.blue = clamp(blue)
    }

    /// From `0xRRGGBB`.
    public init(hex: UInt32) {
        self.init(red: Double((hex >> 16) & 0xFF) / 255, green: Double((hex >> 8) & 0xFF) / 255, blue: Double(hex & 0xFF) / 255)
    }

    /// `#rrggbb`.
    public var hex: String {
        func byte(_ v: Double) -> Int { Int((v * 255).rounded()) }
        return String(format: "#%02x%02x%02x", byte(red), byte(green), byte(blue))
    }

    /// WCAG relative luminance (0 black … 1 white).
    public var luminance: Double {
        func linear(_ c: Double) -> Double { c <= 0.04045 ? c / 12.92 : pow((c + 0.055) / 1.055, 2.4) }
        return 0.2126 * linear(red) + 0.7152 * linear(green) + 0.0722 * linear(blue)
    }

    /// Black or white, whichever has the higher WCAG contrast ratio against this colour (for text on a cell).
    public var contrastingText: SVGColor {
        let onBlack = (luminance + 0.05) / 0.05
        let onWhite = 1.05 / (luminance + 0.05)
        return onBlack >= onWhite ? SVGColor(hex: 0x000000) : SVGColor(hex: 0xFFFFFF)
    }

    /// The colour a fraction `t` of the way from `a` to `b`, interpolated in linear light (no muddy midpoints).
    public static func mix(_ a: SVGColor, _ b: SVGColor, _ t: Double) -> SVGColor {
        func toLinear(_ c: Double) -> Double { c <= 0.04045 ? c / 12.92 : pow((c + 0.055) / 1.055, 2.4) }
        func toSRGB(_ c: Double) -> Double { c <= 0.0031308 ? c * 12.92 : 1.055 * pow(c, 1 / 2.4) - 0.055 }
        func m(_ x: Double, _ y: Double) -> Double { toSRGB(toLinear(x) + (toLinear(y) - toLinear(x)) * t) }
        return SVGColor(red: m(a.red, b.red), green: m(a.green, b.green), blue: m(a.blue, b.blue))
    }
}

/// A sequential colour scale: evenly spaced colour stops, interpolated between neighbours.
///
/// `viridis` runs from dark blue-purple through teal and green to yellow. Its lightness rises steadily, so
/// order reads correctly in greyscale and for the common forms of colour blindness (it avoids a red–green
/// contrast). The stops are the published endpoints and intermediate points of that map; values between
/// them are interpolated here.
public struct ColorScale: Sendable, Equatable {
    public let stops: [SVGColor]
    /// The colour of a missing (NaN) value: a mid grey that is not on the scale.
    public var missing: SVGColor = SVGColor(hex: 0xBDBDBD)

    public init(stops: [SVGColor]) {
        precondition(!stops.isEmpty, "a colour scale needs at least one stop")
        self.stops = stops
    }

    /// Dark (0) to light (1): viridis.
    public static let viridis = ColorScale(stops: [
        0x440154, 0x482475, 0x414487, 0x355F8D, 0x2A788E, 0x21918C, 0x22A884, 0x44BF70, 0x7AD151, 0xBDDF26, 0xFDE725,
    ].map { SVGColor(hex: $0) })

    /// The same stops in the opposite order (light at 0, dark at 1).
    public func reversed() -> ColorScale {
        var r = ColorScale(stops: stops.reversed())
        r.missing = missing
        return r
    }

    /// The colour at `t` in [0, 1] (clamped); `missing` for NaN.
    public func color(at t: Double) -> SVGColor {
        guard !t.isNaN else { return missing }
        if stops.count == 1 { return stops[0] }
        let x = min(1, max(0, t)) * Double(stops.count - 1)
        let i = min(stops.count - 2, Int(x))
        return SVGColor.mix(stops[i], stops[i + 1], x - Double(i))
    }
}

// MARK: - Axes and legends

/// Axes drawn from scales: a base line, tick marks and labels, and an axis title.
public enum SVGAxis {
    /// Which side of the plot an axis sits on.
    public enum Side: Sendable { case bottom, top, left, right }

    /// A numeric axis for `scale` placed at `position` (the y of a bottom/top axis, the x of a left/right one),
    /// with ticks at nice values (`format` writes their labels; the default uses just enough decimals) and an
    /// optional `title` centred along the axis. `gridLength` > 0 also draws light grid lines that far into
    /// the plot.
    public static func numeric(_ scale: LinearScale, side: Side, position: Double, tickCount: Int = 5,
                               title: String? = nil, gridLength: Double = 0,
                               format: ((Double) -> String)? = nil) -> SVGElement {
        let step = scale.tickStep(tickCount)
        let ticks = scale.ticks(tickCount)
        let labels = ticks.map { format?($0) ?? NiceTicks.label($0, step: step) }
        return draw(positions: ticks.map { scale($0) }, labels: labels, side: side, position: position,
                    extent: (scale.range.lo, scale.range.hi), title: title, gridLength: gridLength)
    }

    /// A categorical axis: one label at the centre of each band.
    public static func categorical(_ scale: BandScale, labels: [String], side: Side, position: Double,
                                   title: String? = nil, rotateLabels: Bool = false) -> SVGElement {
        let n = min(scale.count, labels.count)
        return draw(positions: (0..<n).map { scale.center($0) }, labels: Array(labels.prefix(n)), side: side,
                    position: position, extent: (scale.start, scale.end), title: title, gridLength: 0,
                    rotateLabels: rotateLabels)
    }

    private static func draw(positions: [Double], labels: [String], side: Side, position: Double,
                             extent: (Double, Double), title: String?, gridLength: Double,
                             rotateLabels: Bool = false) -> SVGElement {
        let tick = 5.0, gap = 3.0, fontSize = 11.0
        let horizontal = side == .bottom || side == .top
        let outward: Double = (side == .bottom || side == .right) ? 1 : -1
        var g = SVGElement("g", [("class", "axis")])
        if horizontal {
            g.append(.line(x1: extent.0, y1: position, x2: extent.1, y2: position, stroke: "#333333"))
        } else {
            g.append(.line(x1: position, y1: extent.0, x2: position, y2: extent.1, stroke: "#333333"))
        }
        var longest = 0
        for (p, text) in zip(positions, labels) {
            longest = max(longest, text.count)
            if horizontal {
                if gridLength > 0 {
                    g.append(.line(x1: p, y1: position, x2: p, y2: position - outward * gridLength, stroke: "#e3e3e3"))
                }
                g.append(.line(x1: p, y1: position, x2: p, y2: position + outward * tick, stroke: "#333333"))
                let y = position + outward * (tick + gap) + (outward > 0 ? fontSize * 0.8 : 0)
                if rotateLabels {
                    g.append(.label(text, x: p, y: position + outward * (tick + gap), anchor: outward > 0 ? .end : .start,
                                    size: fontSize, middle: true, rotate: -45))
                } else {
                    g.append(.label(text, x: p, y: y, anchor: .middle, size: fontSize))
                }
            } else {
                if gridLength > 0 {
                    g.append(.line(x1: position, y1: p, x2: position - outward * gridLength, y2: p, stroke: "#e3e3e3"))
                }
                g.append(.line(x1: position, y1: p, x2: position + outward * tick, y2: p, stroke: "#333333"))
                g.append(.label(text, x: position + outward * (tick + gap), y: p, anchor: outward > 0 ? .start : .end,
                                size: fontSize, middle: true))
            }
        }
        if let title {
            let mid = (extent.0 + extent.1) / 2
            if horizontal {
                let labelDepth = rotateLabels ? Double(longest) * fontSize * 0.5 : fontSize
                g.append(.label(title, x: mid, y: position + outward * (tick + gap + labelDepth + 8) + (outward > 0 ? fontSize : 0),
                                anchor: .middle, size: 12, bold: true))
            } else {
                let labelWidth = Double(longest) * fontSize * 0.6
                let x = position + outward * (tick + gap + labelWidth + 10)
                g.append(.label(title, x: x, y: mid, anchor: .middle, size: 12, bold: true, middle: true, rotate: -90))
            }
        }
        return g
    }
}

/// Colour legends.
public enum SVGLegend {
    /// A vertical colour bar for `colors` over the data interval `domain` (low at the bottom), `width` × `height`
    /// at (x, y), with nice tick labels on its right and `title` above it. `id` names the gradient and must be
    /// unique within the document. With `missingLabel`, a grey swatch below the bar explains missing values.
    public static func colorBar(_ colors: ColorScale, domain: (Double, Double), x: Double, y: Double,
                                width: Double = 14, height: Double = 200, title: String, id: String,
                                tickCount: Int = 5, missingLabel: String? = nil,
                                format: ((Double) -> String)? = nil) -> SVGElement {
        var gradient = SVGElement("linearGradient", [("id", .text(id)), ("x1", "0"), ("y1", "1"), ("x2", "0"), ("y2", "0")])
        let n = 32
        for i in 0...n {
            let t = Double(i) / Double(n)
            gradient.append(SVGElement("stop", [("offset", .number(t, fractionDigits: 4)),
                                                ("stop-color", .text(colors.color(at: t).hex))]))
        }
        var g = SVGElement("g", [("class", "legend")])
        g.append(SVGElement("defs", children: [gradient]))
        g.append(.label(title, x: x, y: y - 8, size: 12, bold: true))
        g.append(.rect(x: x, y: y, width: width, height: height, fill: "url(#\(id))", stroke: "#555555", strokeWidth: 0.5))
        let scale = LinearScale(domain: domain, range: (y + height, y))
        g.append(SVGAxis.numeric(scale, side: .right, position: x + width, tickCount: tickCount, format: format))
        if let missingLabel {
            let top = y + height + 14
            g.append(.rect(x: x, y: top, width: width, height: 12, fill: colors.missing.hex, stroke: "#555555", strokeWidth: 0.5))
            g.append(.label(missingLabel, x: x + width + 8, y: top + 6, size: 11, middle: true))
        }
        return g
    }
}
