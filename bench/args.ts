// Command-line values the bench tools share the checking of.
import { InvalidArgumentError } from 'commander';

/** A commander parser for a whole-number flag from `min` to `max`. */
export const wholeNumber =
  (flag: string, min: number, max = Infinity) =>
  (raw: string): number => {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${flag} must be a whole number, ${max === Infinity ? `${min} or more` : `${min}..${max}`}`);
    }
    return n;
  };
