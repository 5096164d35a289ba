/// The version of this Rehearsal, as bundles and `rehearse --version` give it.
public enum Version {
    public static let rehearsal = "0.12.0"
}
