/// A command run inside a tree standing in for the host (`gate --preview
/// --root`), as a chroot with `/dev`, `/proc` and `/sys` mounted the way
/// package scripts expect them (a kernel's postinst runs `update-grub`,
/// which needs `/dev`). The mounts are made in a private mount namespace
/// (`unshare`), so none is left behind, whatever happens to the command.
public enum TreeCommand {
    public static func argv(root: String, command: [String]) -> [String] {
        if root == "/" { return command }
        let script = "r=$1; shift; mount --rbind /dev \"$r/dev\" && mount -t proc proc \"$r/proc\" && mount --rbind /sys \"$r/sys\" && exec chroot \"$r\" \"$@\""
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", root] + command
    }
}
