/// Every merge method Crucible knows, by its mergekit name.
public enum MergeMethodRegistry {
    public static let all: [any MergeMethod] = []

    public static func method(named name: String) -> (any MergeMethod)? {
        all.first { $0.name == name }
    }

    public static var names: [String] { all.map(\.name) }
}
