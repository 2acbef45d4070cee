/**
 * Namespace paths: the one place where a path is validated and normalised.
 *
 * A valid path is absolute, at most MAX_PATH_LENGTH characters and MAX_PATH_DEPTH components;
 * repeated slashes and a trailing slash are folded away; a component is never `.` or `..`,
 * never longer than MAX_NAME_LENGTH and never holds a NUL. Everything else in master/ takes
 * normalised paths (or their components) and asserts instead of re-checking.
 */
import { ErrorCode, TesseraError } from '../core/errors.js';
import { MAX_NAME_LENGTH, MAX_PATH_DEPTH, MAX_PATH_LENGTH } from '../core/constants.js';

function invalid(path: unknown, why: string): TesseraError {
  const shown = typeof path === 'string' ? JSON.stringify(path.length > 200 ? path.slice(0, 200) + '...' : path) : String(path);
  return new TesseraError(ErrorCode.INVALID_PATH, `Invalid path ${shown}: ${why}`);
}

// A one-entry cache: an operation parses its path when it is called and again when its
// journal entry is applied, one right after the other.
let cachedPath = '';
let cachedComponents: readonly string[] = [];

/** Validates `path` and returns its components (`[]` for the root). The array is shared: never mutate it. */
export function pathComponents(path: unknown): readonly string[] {
  if (path === cachedPath && typeof path === 'string' && path.length > 0) return cachedComponents;
  const out = parse(path);
  cachedPath = path as string;
  cachedComponents = out;
  return out;
}

function parse(path: unknown): string[] {
  if (typeof path !== 'string') throw invalid(path, 'a path must be a string');
  if (path.length === 0) throw invalid(path, 'a path must not be empty');
  if (path.length > MAX_PATH_LENGTH) throw invalid(path, `longer than ${MAX_PATH_LENGTH} characters`);
  if (path.charCodeAt(0) !== 47) throw invalid(path, "a path must be absolute (start with '/')");
  if (path.indexOf('\0') !== -1) throw invalid(path, 'a path must not contain NUL');
  const parts = path.split('/');
  const out: string[] = [];
  for (const part of parts) {
    if (part.length === 0) continue;
    if (part === '.' || part === '..') throw invalid(path, `'${part}' components are not allowed`);
    if (part.length > MAX_NAME_LENGTH) throw invalid(path, `a component is longer than ${MAX_NAME_LENGTH} characters`);
    out.push(part);
  }
  if (out.length > MAX_PATH_DEPTH) throw invalid(path, `deeper than ${MAX_PATH_DEPTH} components`);
  return out;
}

/** Validates `path` and returns its normal form: `/a/b`, or `/` for the root. */
export function normalizePath(path: unknown): string {
  return joinComponents(pathComponents(path));
}

export function joinComponents(components: readonly string[]): string {
  return components.length === 0 ? '/' : '/' + components.join('/');
}

/** Joins a normalised directory path and a child name. */
export function joinPath(dir: string, name: string): string {
  return dir === '/' ? '/' + name : dir + '/' + name;
}

/** True when normalised `ancestor` is `path` itself or one of its ancestors. */
export function isAncestorOrSelf(ancestor: string, path: string): boolean {
  if (ancestor === '/') return true;
  return path === ancestor || (path.startsWith(ancestor) && path.charCodeAt(ancestor.length) === 47);
}

/** Validates one path component (a name inside a directory). */
export function validateName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_LENGTH || name === '.' || name === '..' ||
      name.indexOf('/') !== -1 || name.indexOf('\0') !== -1) {
    throw invalid(name, 'not a valid file name');
  }
  return name;
}
