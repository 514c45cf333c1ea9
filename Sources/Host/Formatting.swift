import Foundation

/// `1.23 GB` style sizes (decimal units, as disk sizes are usually quoted).
public func formatBytes(_ n: Int) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"]
    var v = Double(n)
    var u = 0
    while v >= 1000 && u < units.count - 1 { v /= 1000; u += 1 }
    return u == 0 ? "\(n) B" : String(format: "%.2f %@", v, units[u])
}

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
