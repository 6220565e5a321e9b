// Package recorder turns publications into files on disk, one file per
// recorded stream, with a JSON manifest beside each.
package recorder
