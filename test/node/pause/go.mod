// The pause program of the node tier's sandbox image (test/node/build.ts): standard library only.
module sinker.test/pause

go 1.22
