// Images for the node tier, built with podman (daemonless) in a storage of the node cache, never the machine's:
// - the stand-in for the Dockerfile's base image (`node:<version>-bookworm-slim`, which cannot be pulled here):
//   Debian bookworm's own packages (apt-get download: libc6, libstdc++6, libgcc-s1, dash, coreutils and what
//   they need), Node's npm-distributed binary (the `node` package this project already installs) in
//   /usr/local/bin, npm from the registry in /usr/local/lib/node_modules/npm, and a `node` user with uid 1000:
//   the layout of the official image. Users build against the real base;
// - Sinker's image, built from the repository's Dockerfile with `podman build` against that stand-in;
// - the pause image of the pod sandboxes (test/node/pause, one static binary).
import { createHash } from "node:crypto";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot } from "../controlplane/testenv.ts";
import { cacheRootFor } from "../support/go-build.ts";
import { runCommand } from "../support/run-command.ts";

/** The Node.js version of the base image: the one the project's `node` devDependency installs. */
export const NODE_VERSION = process.versions.node;
/** npm in the stand-in base (the official image bundles the npm of its Node release). */
const NPM_VERSION = "11.19.1";
const DEBIAN_PACKAGES = [
  "base-files",
  "libc6",
  "libgcc-s1",
  "gcc-12-base",
  "libstdc++6",
  "dash",
  "coreutils",
  "libacl1",
  "libattr1",
  "libgmp10",
  "libselinux1",
  "libpcre2-8-0",
];

export const BASE_IMAGE = `localhost/sinker-node-base:${NODE_VERSION}-bookworm-slim`;

function nodeCache(): string {
  return cacheRootFor("node", process.env.SINKER_NODE_CACHE);
}

/** podman with its own storage under the node cache, runc, cgroupfs (crun refuses this kind of machine). */
export function podmanArgs(): string[] {
  const h = createHash("sha256").update(nodeCache()).digest("hex").slice(0, 8);
  return [
    "--root",
    join(nodeCache(), "podman", "storage"),
    "--runroot",
    join(tmpdir(), `sinker-podman-${h}`),
    "--storage-driver",
    "overlay",
    "--cgroup-manager",
    "cgroupfs",
    "--runtime",
    "runc",
    "--events-backend",
    "none",
  ];
}

/** The machine's hard limits are lower than podman's defaults: ask for what is allowed. */
export const ULIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096"];

export async function podman(args: string[], opts: { input?: string } = {}): Promise<string> {
  // A cold build (npm ci, tsc) on a loaded machine takes minutes: a generous bound.
  const r = await runCommand("podman", [...podmanArgs(), ...args], { ...opts, timeoutMs: 20 * 60_000 });
  if (r.code !== 0) throw new Error(`podman ${args.join(" ")} failed (exit ${r.code}):\n${r.stderr}`);
  return r.stdout;
}

async function sh(cmd: string, args: string[], cwd: string): Promise<void> {
  const r = await runCommand(cmd, args, { cwd, timeoutMs: 600_000 });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (exit ${r.code}): ${r.stderr}`);
}

async function imageExists(name: string): Promise<boolean> {
  return (await runCommand("podman", [...podmanArgs(), "image", "exists", name])).code === 0;
}

/** `tar -C dir -c . | podman import` with the given Dockerfile-style changes. */
async function importDir(dir: string, name: string, changes: string[]): Promise<void> {
  const tarFile = `${dir}.tar`;
  await sh("tar", ["-C", dir, "-cf", tarFile, "."], dir);
  try {
    await podman(["import", ...changes.flatMap((c) => ["--change", c]), tarFile, name]);
  } finally {
    rmSync(tarFile, { force: true });
  }
}

/** Builds the stand-in base image unless podman's storage already holds it. */
export async function ensureBaseImage(log: (m: string) => void): Promise<string> {
  if (await imageExists(BASE_IMAGE)) return BASE_IMAGE;
  const t0 = Date.now();
  const work = mkdtempSync(join(tmpdir(), "sinker-base-"));
  try {
    const debs = join(work, "debs");
    const root = join(work, "rootfs");
    mkdirSync(debs);
    mkdirSync(root);
    await sh("apt-get", ["download", ...DEBIAN_PACKAGES], debs);
    for (const deb of readdirSync(debs)) await sh("dpkg-deb", ["-x", join(debs, deb), root], debs);
    mkdirSync(join(root, "usr/local/bin"), { recursive: true });
    await sh("cp", [process.execPath, join(root, "usr/local/bin/node")], work);
    const npmDir = join(root, "usr/local/lib/node_modules/npm");
    mkdirSync(npmDir, { recursive: true });
    await sh("npm", ["pack", `npm@${NPM_VERSION}`, "--prefer-offline", "--pack-destination", work], work);
    await sh(
      "tar",
      ["-xzf", join(work, `npm-${NPM_VERSION}.tgz`), "-C", npmDir, "--strip-components=1"],
      work,
    );
    await sh("ln", ["-s", "../lib/node_modules/npm/bin/npm-cli.js", join(root, "usr/local/bin/npm")], work);
    await sh("ln", ["-s", "../lib/node_modules/npm/bin/npx-cli.js", join(root, "usr/local/bin/npx")], work);
    writeFileSync(
      join(root, "etc/passwd"),
      "root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n",
    );
    writeFileSync(join(root, "etc/group"), "root:x:0:\nnode:x:1000:\n");
    mkdirSync(join(root, "home/node"), { recursive: true });
    chownSync(join(root, "home/node"), 1000, 1000);
    mkdirSync(join(root, "tmp"), { recursive: true });
    chmodSync(join(root, "tmp"), 0o1777);
    await importDir(root, BASE_IMAGE, [
      "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      `ENV NODE_VERSION=${NODE_VERSION}`,
      'CMD ["node"]',
    ]);
    log(`stand-in base image ${BASE_IMAGE} built (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    return BASE_IMAGE;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The pause image as a docker archive (cached next to the pause binary it holds). */
export async function ensurePauseArchive(pauseBin: string, name: string): Promise<string> {
  const archive = join(pauseBin, "..", "pause-image.tar");
  if (existsSync(archive)) return archive;
  const work = mkdtempSync(join(tmpdir(), "sinker-pause-"));
  try {
    await sh("cp", [pauseBin, join(work, "pause")], work);
    await importDir(work, name, ['ENTRYPOINT ["/pause"]', "USER 65535:65535"]);
    const tmp = `${archive}.${process.pid}.tmp`;
    await podman(["save", "--format", "docker-archive", "-o", tmp, name]);
    await sh("mv", [tmp, archive], work);
    return archive;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export type BuiltImage = { name: string; archive: string; seconds: number; sizeBytes: number };

/**
 * `podman build` of the repository's Dockerfile against the stand-in base, then a docker archive for containerd.
 * npm inside the build reads the machine's npm cache through an overlay mount (writes are thrown away, so the
 * runtime stage's `npm cache clean` never touches it) and goes to the registry only for what is not cached.
 */
export async function buildSinkerImage(
  name: string,
  outDir: string,
  log: (m: string) => void,
): Promise<BuiltImage> {
  await ensureBaseImage(log);
  const npmCache = join(homedir(), ".npm");
  mkdirSync(npmCache, { recursive: true });
  const npmrc = join(outDir, "npmrc");
  writeFileSync(npmrc, "prefer-offline=true\naudit=false\nfund=false\nupdate-notifier=false\n");
  const t0 = Date.now();
  await podman([
    "build",
    ...ULIMITS,
    "--pull=never",
    "--network=host",
    "--build-arg",
    `NODE_IMAGE=${BASE_IMAGE}`,
    "--volume",
    `${npmCache}:/root/.npm:O`,
    "--volume",
    `${npmrc}:/root/.npmrc:ro`,
    "--layers",
    "-t",
    name,
    "-f",
    join(repoRoot, "Dockerfile"),
    repoRoot,
  ]);
  const seconds = (Date.now() - t0) / 1000;
  const sizeBytes = Number((await podman(["image", "inspect", "--format", "{{.Size}}", name])).trim());
  const archive = join(outDir, "sinker-image.tar");
  rmSync(archive, { force: true });
  await podman(["save", "--format", "docker-archive", "-o", archive, name]);
  return { name, archive, seconds, sizeBytes };
}
