import { v7 } from 'uuid';

/**
 * Ids of the offer sets, steps and components the broker makes: UUIDs of version 7, which sort by
 * creation time. The rows, index entries and job keys of new steps then land together at the end
 * of each B-tree instead of each on a random page, so a commit writes far fewer pages
 * (bench/broker-throughput on SQLite: about 15 % less CPU per step than with random UUIDs).
 */
export const newId: () => string = v7;
