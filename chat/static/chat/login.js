// The login page only needs the language switch to submit on change.
import { enableLanguageSwitch } from "./language.js";

enableLanguageSwitch();
