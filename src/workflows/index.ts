export { individualDowngrade } from './individualDowngrade.js';
