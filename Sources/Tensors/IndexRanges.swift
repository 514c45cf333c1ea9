/// Sorted indices written as runs, `0-3, 7, 9-12` (layers, experts): how plans, warnings and tables name many layers.
public func compactRanges(_ sorted: [Int], separator: String = ", ") -> String {
    var parts: [String] = []
    var i = 0
    while i < sorted.count {
        var j = i
        while j + 1 < sorted.count && sorted[j + 1] == sorted[j] + 1 { j += 1 }
        parts.append(j > i ? "\(sorted[i])-\(sorted[j])" : "\(sorted[i])")
        i = j + 1
    }
    return parts.joined(separator: separator)
}
